import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../store/sqlite/engine.js';
import { HeartbeatRelay } from './heartbeat-relay.js';
import { HeartbeatTable } from './heartbeats.js';

describe('HeartbeatTable', () => {
  it('keeps the last heartbeat and its utilization in memory', () => {
    let now = 1000;
    const t = new HeartbeatTable({ clock: () => now });
    t.record('d1', { cpuPct: 5, memoryUsedBytes: 10 });
    now = 1500;
    t.record('d1');
    assert.deepEqual(t.get('d1'), { seenAt: 1500, utilization: { cpuPct: 5, memoryUsedBytes: 10 } }, 'a heartbeat without utilization keeps the last one');
    t.merge('d1', 1200, { cpuPct: 99, memoryUsedBytes: 1 });
    assert.equal(t.get('d1')!.seenAt, 1500, 'older news from another server is ignored');
    assert.deepEqual(t.takeDirty().map(([id]) => id), ['d1']);
    assert.deepEqual(t.takeDirty(), []);
  });

  it('rate cap: past maxPerSecond the interval stretches at once, and shrinks only after five intervals', () => {
    let now = 0;
    const t = new HeartbeatTable({ clock: () => now, heartbeatMs: 1000, maxPerSecond: 2 });
    t.record('a');
    t.record('b');
    assert.equal(t.intervalMs(), 1000);
    for (const id of ['c', 'd', 'e']) t.record(id);
    assert.equal(t.intervalMs(), 2500, '5 devices at 2/s: every 2.5 s');
    assert.equal(t.scale(), 2.5);
    for (const id of ['c', 'd', 'e']) t.forget(id);
    now = 10_000;
    assert.equal(t.intervalMs(), 2500, 'not yet: agents may still be on 2.5 s');
    now = 12_600;
    assert.equal(t.intervalMs(), 1000);
  });
});

describe('HeartbeatRelay', () => {
  it('servers sharing a store see each other\'s heartbeats, by age, not by clock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-relay-'));
    const store = await SqliteStore.open({ path: join(dir, 'state.db') });
    // Two servers whose clocks disagree by an hour.
    let nowA = 1_000_000;
    let nowB = nowA + 3_600_000;
    const a = new HeartbeatTable({ clock: () => nowA });
    const b = new HeartbeatTable({ clock: () => nowB });
    const ra = new HeartbeatRelay(store, a, 'server-a', () => nowA, { flushMs: 60_000 });
    const rb = new HeartbeatRelay(store, b, 'server-b', () => nowB, { flushMs: 60_000 });
    try {
      ra.start();
      rb.start();
      a.record('dev-1', { cpuPct: 42, memoryUsedBytes: 7 });
      nowA += 300;
      nowB += 300;
      await ra.flush();
      for (let i = 0; i < 200 && !b.get('dev-1'); i++) await new Promise((r) => setImmediate(r));
      const seen = b.get('dev-1');
      assert.ok(seen, 'server b learned of dev-1');
      assert.equal(nowB - seen.seenAt, 300, 'as 300 ms old, on b\'s own clock');
      assert.equal(seen.utilization?.cpuPct, 42);
      assert.deepEqual(b.takeDirty(), [], 'relayed heartbeats are not relayed again');
      await rb.flush();
      assert.equal((await store.range('/nexus/heartbeats/server-b/')).items.length, 0, 'nothing new on b: no write');
    } finally {
      await ra.stop();
      await rb.stop();
      assert.equal((await store.range('/nexus/heartbeats/')).items.length, 0, 'a stopping server removes its batches');
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
