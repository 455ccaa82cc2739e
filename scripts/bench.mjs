#!/usr/bin/env node
// `npm run bench -- NAME [ARGS]`: compiles, then runs dist/bench/NAME.js with ARGS.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [name, ...args] = process.argv.slice(2);
const available = () => readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).join(', ');
if (!name) {
  console.error(`usage: npm run bench -- NAME [ARGS]; NAME is one of: ${available()}`);
  process.exit(2);
}
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
const file = join(root, 'dist', 'bench', `${name}.js`);
if (!existsSync(file)) {
  console.error(`no benchmark ${name}; available: ${available()}`);
  process.exit(2);
}
const run = spawnSync(process.execPath, ['--expose-gc', file, ...args], { stdio: 'inherit', cwd: root });
process.exit(run.status ?? 1);
