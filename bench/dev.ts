/**
 * `nexus dev` start-up time (process start → /readyz 200) and idle RSS.
 *
 *   npm run bench -- dev [--runs 5] [--idle 30]
 *
 * Prints the median and worst start-up over fresh data dirs (first start: CA-less dev, tenant and
 * token bootstrap) and over a warm restart, beside the floor: `node -e 0` (Node's own start) in
 * the same run. Then the RSS of an idle `nexus dev` after --idle seconds (goal: < 100 MB).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NEXUS_BIN } from '../src/testing/cli.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, idle: { type: 'string', default: '30' } } });
const runs = Number(values.runs);
const idleSeconds = Number(values.idle);

async function waitReady(url: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('not ready in time');
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `nexus dev` and returns ms from spawn to /readyz 200, and the child. */
async function startOnce(dataDir: string) {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [NEXUS_BIN, 'dev', '--data-dir', dataDir, '--port', String(port)], { stdio: 'ignore', env: { ...process.env, NEXUS_LOG_LEVEL: 'warn' } });
  await waitReady(`http://127.0.0.1:${port}`, Date.now() + 20_000);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, child };
}

function stop(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const floor: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    floor.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const cold: number[] = [];
  const warm: number[] = [];
  const dirs: string[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-dev-'));
    dirs.push(dir);
    const a = await startOnce(dir);
    cold.push(a.ms);
    await stop(a.child);
    const b = await startOnce(dir);
    warm.push(b.ms);
    await stop(b.child);
  }
  console.log('nexus dev start-up, process start -> /readyz 200 (goal <= 1500 ms)');
  console.log(`  first start (empty data dir): median ${median(cold).toFixed(0)} ms, worst ${Math.max(...cold).toFixed(0)} ms over ${runs}`);
  console.log(`  restart (existing data dir):  median ${median(warm).toFixed(0)} ms, worst ${Math.max(...warm).toFixed(0)} ms over ${runs}`);
  console.log(`  floor, node -e 0:             median ${median(floor).toFixed(0)} ms  (nexus/floor ${(median(cold) / median(floor)).toFixed(1)}x)`);

  const dir = dirs[0]!;
  const { child } = await startOnce(dir);
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  console.log(`idle RSS of nexus dev after ${idleSeconds} s: ${(rssKb / 1024).toFixed(1)} MiB (goal < 100 MB)`);
  await stop(child);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
