/**
 * Crash durability of the SQLite engine: a child process writes to the store and acknowledges each
 * write on stdout only after the write's promise resolved; the test SIGKILLs it at a random moment,
 * 20 times over the same database file, and after every kill reopens the file and checks that
 *
 * - every acknowledged write is there with its acknowledged value and revision;
 * - the store revision never goes backwards across restarts and is >= the last acknowledged one,
 *   and a new writer never reuses a revision an earlier run could have handed out;
 * - a watch from revision 1 replays every key in revision order, acknowledged ones included.
 *
 * What SIGKILL proves: a resolved write was committed before its promise resolved (nothing is
 * held in process memory). It does not cut power, so it cannot prove the fsync half of
 * synchronous=FULL; the OS page cache survives a process kill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '../src/store/sqlite/engine.js';
import type { WatchEvent } from '../src/store/types.js';

const WRITER = fileURLToPath(new URL('./fixtures/durable-writer.js', import.meta.url));
const RUNS = 20;
const FIRST_ACK_TIMEOUT_MS = 10_000;
const PREFIX = 'durable/';

interface Ack {
  value: string;
  /** Revision the write returned; every key of a transaction shares it. */
  revision: number;
  run: number;
}

interface RunOutput {
  /** Complete lines the writer printed before it was killed. */
  lines: string[];
  /** Milliseconds waited after the first ack before the kill. */
  delayMs: number;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spawns the writer, kills it 50–400 ms after its first ack, and returns its complete lines. */
function runWriter(dbPath: string, run: number): Promise<RunOutput> {
  return new Promise<RunOutput>((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dbPath, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killing = false;
    let delayMs = -1;
    const noAck = setTimeout(() => {
      killing = true;
      child.kill('SIGKILL');
      reject(new Error(`run ${run}: no ack within ${FIRST_ACK_TIMEOUT_MS} ms; stderr: ${err}`));
    }, FIRST_ACK_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => { err += chunk; });
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (delayMs < 0 && out.includes('\nrev ')) {
        clearTimeout(noAck);
        delayMs = 50 + Math.floor(Math.random() * 351);
        setTimeout(() => {
          killing = true;
          child.kill('SIGKILL');
        }, delayMs);
      }
    });
    child.on('error', (e) => {
      clearTimeout(noAck);
      reject(e);
    });
    // 'close' comes after stdout has ended: every byte the writer got into the pipe is in `out`.
    child.on('close', (code, signal) => {
      clearTimeout(noAck);
      if (!killing || signal !== 'SIGKILL') {
        reject(new Error(`run ${run}: writer exited on its own (code ${code}, signal ${signal}); stderr: ${err}`));
        return;
      }
      const lines = out.split('\n');
      lines.pop(); // the piece after the last newline is incomplete (or empty)
      resolve({ lines, delayMs });
    });
  });
}

/** Folds a run's lines into `acked`; returns the revisions the run acknowledged, in order. */
function collectAcks(run: number, lines: string[], acked: Map<string, Ack>): number[] {
  const revisions: number[] = [];
  let pending: { key: string; value: string }[] = [];
  for (const line of lines) {
    const parts = line.split(' ');
    if (parts[0] === 'ack' && parts.length === 3) {
      pending.push({ key: parts[1]!, value: parts[2]! });
    } else if (parts[0] === 'rev' && parts.length === 2) {
      const revision = Number(parts[1]);
      assert.ok(Number.isInteger(revision) && revision > 1, `run ${run}: bad revision line ${JSON.stringify(line)}`);
      assert.ok(pending.length > 0, `run ${run}: rev line without acks`);
      for (const { key, value } of pending) {
        assert.ok(!acked.has(key), `run ${run}: key ${key} acknowledged twice`);
        acked.set(key, { value, revision, run });
      }
      pending = [];
      revisions.push(revision);
    } else {
      assert.fail(`run ${run}: unexpected writer output ${JSON.stringify(line)}`);
    }
  }
  // A write's ack lines and rev line go out in one pipe write, so a kill cannot split them.
  assert.equal(pending.length, 0, `run ${run}: ack lines without their rev line`);
  return revisions;
}

/** Replays every event under PREFIX from revision 1; `expected` is how many keys the store holds. */
async function replay(store: SqliteStore, expected: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  const watch = store.watch(PREFIX, { fromRevision: 1 });
  // History is queued synchronously by watch(); the guard only matters if events are missing.
  const guard = setTimeout(() => watch.close(), 5_000);
  try {
    if (expected > 0) {
      for await (const ev of watch) {
        events.push(ev);
        if (events.length >= expected) break;
      }
    }
  } finally {
    clearTimeout(guard);
    watch.close();
  }
  return events;
}

test('acknowledged writes survive SIGKILL of the writer, 20 times over one database', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-durability-'));
  const dbPath = join(dir, 'state.db');
  const acked = new Map<string, Ack>();
  let lastAckedRevision = 1;
  let lastReopenRevision = 1;
  let ackedWrites = 0;
  try {
    for (let run = 0; run < RUNS; run++) {
      const { lines, delayMs } = await runWriter(dbPath, run);
      const revisions = collectAcks(run, lines, acked);
      assert.ok(revisions.length > 0, `run ${run}: the writer acknowledged nothing`);
      // Revisions of one run strictly increase, and a new run starts above everything already
      // stored (acked or not): no revision is handed out twice across a crash.
      assert.ok(revisions[0]! > lastReopenRevision,
        `run ${run}: first acked revision ${revisions[0]} is not above the revision ${lastReopenRevision} stored before it started`);
      for (let i = 1; i < revisions.length; i++) assert.ok(revisions[i]! > revisions[i - 1]!, `run ${run}: revisions not increasing`);
      lastAckedRevision = revisions[revisions.length - 1]!;
      ackedWrites += revisions.length;

      const store = await SqliteStore.open({ path: dbPath, sweepIntervalMs: 60_000 });
      try {
        const revision = await store.revision();
        assert.ok(revision >= lastAckedRevision, `run ${run}: store revision ${revision} < last acked ${lastAckedRevision}`);
        assert.ok(revision >= lastReopenRevision, `run ${run}: store revision went back from ${lastReopenRevision} to ${revision}`);

        const { items, next } = await store.range(PREFIX);
        assert.equal(next, undefined);
        const stored = new Map(items.map((kv) => [kv.key, kv]));
        for (const [key, ack] of acked) {
          const kv = stored.get(key);
          assert.ok(kv, `run ${run}: acked key ${key} (run ${ack.run}, revision ${ack.revision}) is missing`);
          assert.equal(kv.value, ack.value, `run ${run}: acked key ${key} has the wrong value`);
          assert.equal(kv.modRevision, ack.revision, `run ${run}: acked key ${key} has the wrong revision`);
          assert.equal(kv.version, 1, `run ${run}: key ${key} was written more than once`);
        }
        for (const kv of items) assert.ok(kv.modRevision <= revision, `run ${run}: key ${kv.key} is above the store revision`);

        // Watch from revision 1: one put per stored key, in revision order, matching the stored state.
        const events = await replay(store, items.length);
        assert.equal(events.length, items.length, `run ${run}: watch replayed ${events.length} events for ${items.length} keys`);
        const seen = new Set<string>();
        let prev = 0;
        for (const ev of events) {
          assert.equal(ev.type, 'put');
          assert.ok(ev.revision >= prev, `run ${run}: watch events out of revision order`);
          prev = ev.revision;
          const kv = stored.get(ev.key);
          assert.ok(kv && kv.value === ev.value && kv.modRevision === ev.revision, `run ${run}: watch event for ${ev.key} disagrees with the stored key`);
          seen.add(ev.key);
        }
        for (const key of acked.keys()) assert.ok(seen.has(key), `run ${run}: watch from revision 1 did not replay acked key ${key}`);

        const unacked = items.length - acked.size;
        t.diagnostic(`run ${run}: killed ${delayMs} ms after first ack; ${revisions.length} writes acked this run, ` +
          `${acked.size} keys acked in total, ${unacked} committed but unacked, revision ${revision}`);
        lastReopenRevision = revision;
      } finally {
        await store.close();
      }
    }
    console.log(`durability: verified ${ackedWrites} acknowledged writes (${acked.size} keys) over ${RUNS} SIGKILLed writer runs, final revision ${lastReopenRevision}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
