#!/usr/bin/env node
// Runs the test suite: compiles with tsc, then `node --test` over an explicit list of compiled
// test files (Node 20 takes no globs). Tiers are selected by name:
//   unit  — *.test.js beside the code (src/)
//   int   — test/*.int.test.js (real subprocesses: etcd, CLI, agents)
//   e2e   — test/*.e2e.test.js (a real browser)
// `node scripts/test.mjs` runs all; `node scripts/test.mjs unit int` picks tiers; extra
// arguments that end in .ts/.js select single files.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const tiers = new Set(args.filter((a) => ['unit', 'int', 'e2e'].includes(a)));
const files = args.filter((a) => /\.(ts|js)$/.test(a));

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function tierOf(file) {
  if (file.endsWith('.e2e.test.js')) return 'e2e';
  if (file.endsWith('.int.test.js')) return 'int';
  return 'unit';
}

let selected;
if (files.length > 0) {
  selected = files.map((f) => join(root, 'dist', f.replace(/\.ts$/, '.js')));
} else {
  // Only compiled tests whose source still exists: an incremental build leaves removed ones behind.
  const hasSource = (f) => existsSync(join(root, relative(join(root, 'dist'), f)).replace(/\.js$/, '.ts'));
  selected = walk(join(root, 'dist')).filter(hasSource).filter((f) => tiers.size === 0 || tiers.has(tierOf(f))).sort();
}
if (selected.length === 0) {
  console.error('no test files selected');
  process.exit(1);
}
console.log(`running ${selected.length} test files: ${selected.map((f) => relative(join(root, 'dist'), f)).join(' ')}`);
const concurrency = process.env.NEXUS_TEST_CONCURRENCY ?? '2';
const run = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...selected], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'silent' },
});
process.exit(run.status ?? 1);
