/**
 * State-store throughput: the SQLite engine, the etcd engine, and the raw `etcd3` client talking
 * straight to the same etcd (the peer we measure ourselves against). Goals: SQLite puts beat
 * etcd-direct; our etcd engine stays within 20% of etcd-direct.
 *
 *   node dist/bench/store.js [--ops 2000] [--rounds 2] [--max-seconds 15]
 *
 * Each phase runs `--ops` operations (256-byte values) and stops early at `--max-seconds`, so a
 * slow disk cannot make the run unbounded. Targets run `--rounds` times in alternating order and
 * the best round counts, so drift on a busy machine (etcd and this process share its CPUs) does
 * not favour whoever runs first. A fresh etcd is started for the run and removed after.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { EtcdStore } from '../src/store/etcd/engine.js';
import { SqliteStore } from '../src/store/sqlite/engine.js';
import { startEtcd } from '../src/testing/etcd.js';

interface Target {
  readonly name: string;
  put(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<unknown>;
  close(): Promise<void>;
}

const PHASES = ['seq put', 'seq get', 'c64 put', 'c64 get'] as const;
type Phase = (typeof PHASES)[number];
const CONCURRENCY = 64;
const VALUE = 'v'.repeat(256);

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '2' },
    'max-seconds': { type: 'string', default: '15' },
  },
});
const ROUNDS = Math.max(1, Number(args.rounds));
const OPS = Math.max(1, Number(args.ops));
const MAX_MS = Math.max(1, Number(args['max-seconds'])) * 1000;

/** Runs `op(i)` for i in [0, OPS) on `workers` workers; returns ops per second. */
async function measure(workers: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  const deadline = start + MAX_MS;
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < OPS && performance.now() < deadline) {
      await op(next++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return done / ((performance.now() - start) / 1000);
}

async function run(t: Target): Promise<Record<Phase, number>> {
  const key = (i: number) => `/bench/${t.name}/${String(i).padStart(6, '0')}`;
  for (let i = 0; i < 50; i++) await t.put(key(i), VALUE); // warm-up: connections, statements
  return {
    'seq put': await measure(1, (i) => t.put(key(i), VALUE)),
    'seq get': await measure(1, (i) => t.get(key(i))),
    'c64 put': await measure(CONCURRENCY, (i) => t.put(key(i), VALUE)),
    'c64 get': await measure(CONCURRENCY, (i) => t.get(key(i))),
  };
}

function table(rows: [string, Record<Phase, number>][]): string {
  const head = ['engine', ...PHASES.map((p) => `${p}/s`)];
  const body = rows.map(([name, r]) => [name, ...PHASES.map((p) => r[p].toFixed(0))]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

async function main(): Promise<void> {
  console.log(`store bench: ${OPS} ops per phase, best of ${ROUNDS} rounds, ${CONCURRENCY} concurrent in c64 phases, 256-byte values, cap ${MAX_MS / 1000} s/phase`);
  const etcd = await startEtcd();
  const dir = await mkdtemp(join(tmpdir(), 'nexus-bench-'));
  try {
    const direct = new Etcd3({ hosts: etcd.endpoint });
    const ours = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: '/ours' });
    const sqlite = await SqliteStore.open({ path: join(dir, 'state.db') });
    const targets: Target[] = [
      {
        name: 'etcd-direct (etcd3)',
        put: (k, v) => direct.put(k).value(v).exec(),
        get: (k) => direct.get(k).string(),
        close: async () => direct.close(),
      },
      { name: 'etcd (NEXUS engine)', put: (k, v) => ours.put(k, v), get: (k) => ours.get(k), close: () => ours.close() },
      { name: 'sqlite (NEXUS engine)', put: (k, v) => sqlite.put(k, v), get: (k) => sqlite.get(k), close: () => sqlite.close() },
    ];
    const best = new Map<Target, Record<Phase, number>>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
        const r = await run(t);
        const prev = best.get(t);
        best.set(t, prev ? (Object.fromEntries(PHASES.map((p) => [p, Math.max(prev[p], r[p])])) as Record<Phase, number>) : r);
      }
    }
    for (const t of targets) await t.close();
    const rows = targets.map((t): [string, Record<Phase, number>] => [t.name, best.get(t)!]);
    console.log(`\n${table(rows)}\n`);
    const [d, o, s] = rows.map(([, r]) => r) as [Record<Phase, number>, Record<Phase, number>, Record<Phase, number>];
    console.log(`sqlite put vs etcd-direct: seq ${ratio(s['seq put'], d['seq put'])}, c64 ${ratio(s['c64 put'], d['c64 put'])}  (goal: > 1)`);
    console.log(
      `our etcd vs etcd-direct:   ${PHASES.map((p) => `${p} ${ratio(o[p], d[p])}`).join(', ')}  (goal: >= 0.80)`,
    );
  } finally {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
