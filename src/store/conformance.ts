/**
 * The one conformance suite every StateStore engine passes unchanged (the hono pattern: one test
 * file, several implementations). Engines' test files call `runStoreConformance` with a factory.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isNexusError } from '../errors/catalogue.js';
import type { StateStore, WatchEvent } from './types.js';

export interface OpenedStore {
  store: StateStore;
  close(): Promise<void>;
}

export interface ConformanceOptions {
  /** Lease TTL used by the expiry test, in seconds. @default 1 */
  leaseTtlSeconds?: number;
}

async function collect(iter: AsyncIterable<WatchEvent>, n: number, timeoutMs = 10_000): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  const timer = setTimeout(() => {}, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  try {
    for await (const ev of iter) {
      out.push(ev);
      if (out.length >= n) break;
      if (Date.now() > deadline) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

let seq = 0;

export function runStoreConformance(engineName: string, open: () => Promise<OpenedStore>, options: ConformanceOptions = {}): void {
  const ttl = options.leaseTtlSeconds ?? 1;

  describe(`StateStore conformance: ${engineName}`, () => {
    let opened: OpenedStore;
    let s: StateStore;
    // Every case works under its own prefix, so one store instance can serve the whole suite.
    const p = (name: string) => `/conf/${process.pid}/${++seq}/${name}/`;

    before(async () => {
      opened = await open();
      s = opened.store;
    });
    after(async () => {
      await opened?.close();
    });

    it('put then get returns value and revisions; revision is global and monotonic', async () => {
      const k = p('basic') + 'a';
      const r0 = await s.revision();
      const put1 = await s.put(k, 'one');
      assert.ok(put1.revision > r0, 'a put advances the revision');
      assert.equal(put1.prev, undefined);
      const got = await s.get(k);
      assert.equal(got?.value, 'one');
      assert.equal(got?.createRevision, put1.revision);
      assert.equal(got?.modRevision, put1.revision);
      assert.equal(got?.version, 1);
      const put2 = await s.put(k, 'two');
      assert.equal(put2.revision, put1.revision + 1);
      assert.equal(put2.prev?.value, 'one');
      const got2 = await s.get(k);
      assert.equal(got2?.version, 2);
      assert.equal(got2?.createRevision, put1.revision);
      assert.equal(await s.revision(), put2.revision);
      assert.equal(await s.get(p('basic') + 'missing'), undefined);
    });

    it('delete removes a key and reports how many; deleting nothing keeps the revision', async () => {
      const base = p('del');
      await s.put(base + 'x', '1');
      const d = await s.delete(base + 'x');
      assert.equal(d.deleted, 1);
      assert.equal(await s.get(base + 'x'), undefined);
      const d2 = await s.delete(base + 'x');
      assert.equal(d2.deleted, 0);
      assert.equal(d2.revision, d.revision);
      await s.put(base + 'y/1', '1');
      await s.put(base + 'y/2', '2');
      await s.put(base + 'z', '3');
      const dp = await s.deletePrefix(base + 'y/');
      assert.equal(dp.deleted, 2);
      assert.equal((await s.range(base)).items.length, 1);
      // Re-creating a deleted key starts its version again.
      const re = await s.put(base + 'x', 'again');
      const kv = await s.get(base + 'x');
      assert.equal(kv?.version, 1);
      assert.equal(kv?.createRevision, re.revision);
    });

    it('range pagination returns each key exactly once, in order', async () => {
      const base = p('range');
      const keys: string[] = [];
      for (let i = 0; i < 57; i++) keys.push(`${base}${String(i).padStart(3, '0')}`);
      for (const k of [...keys].reverse()) await s.put(k, k);
      await s.put(base.slice(0, -1) + 'x', 'outside the prefix');
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await s.range(base, { limit: 10, ...(after ? { after } : {}) });
        assert.ok(page.items.length <= 10);
        seen.push(...page.items.map((kv) => kv.key));
        after = page.next;
        pages++;
        assert.ok(pages < 20, 'pagination terminates');
      } while (after);
      assert.deepEqual(seen, keys);
      assert.equal(pages, 6);
      const all = await s.range(base);
      assert.equal(all.items.length, 57);
      assert.equal(all.next, undefined);
    });

    it('txn compares on modRevision/version/value and runs success or failure', async () => {
      const k = p('txn') + 'k';
      const missing = await s.txn({
        compare: [{ key: k, target: 'version', op: '=', value: 0 }],
        success: [{ type: 'put', key: k, value: 'created' }],
        failure: [{ type: 'get', key: k }],
      });
      assert.equal(missing.succeeded, true);
      const kv = await s.get(k);
      assert.equal(kv?.value, 'created');
      assert.equal(kv?.modRevision, missing.revision);
      const stale = await s.txn({
        compare: [{ key: k, target: 'modRevision', op: '=', value: kv!.modRevision - 1 }],
        success: [{ type: 'put', key: k, value: 'nope' }],
        failure: [{ type: 'get', key: k }],
      });
      assert.equal(stale.succeeded, false);
      assert.equal(stale.revision, missing.revision, 'a failed txn with only reads writes nothing');
      assert.deepEqual((stale.results[0] as { kv?: { value: string } }).kv?.value, 'created');
      const multi = await s.txn({
        compare: [
          { key: k, target: 'value', op: '=', value: 'created' },
          { key: k, target: 'modRevision', op: '=', value: kv!.modRevision },
        ],
        success: [
          { type: 'put', key: k, value: 'updated' },
          { type: 'put', key: k + '2', value: 'sibling' },
        ],
      });
      assert.equal(multi.succeeded, true);
      const a = await s.get(k);
      const b = await s.get(k + '2');
      assert.equal(a?.modRevision, multi.revision, 'all writes of a txn share one revision');
      assert.equal(b?.modRevision, multi.revision);
      assert.equal(multi.revision, missing.revision + 1);
      const gt = await s.txn({ compare: [{ key: k, target: 'version', op: '>', value: 1 }], success: [{ type: 'delete', key: k }] });
      assert.equal(gt.succeeded, true);
      assert.equal(await s.get(k), undefined);
    });

    it('50 concurrent compare-and-swap increments of one key end at exactly 50', async () => {
      const k = p('cas') + 'counter';
      await s.put(k, '0');
      let conflicts = 0;
      const incr = async () => {
        for (;;) {
          const cur = await s.get(k);
          const n = Number(cur!.value);
          const r = await s.txn({
            compare: [{ key: k, target: 'modRevision', op: '=', value: cur!.modRevision }],
            success: [{ type: 'put', key: k, value: String(n + 1) }],
          });
          if (r.succeeded) return;
          conflicts++;
        }
      };
      await withTimeout(Promise.all(Array.from({ length: 50 }, incr)), 60_000, 'CAS increments');
      assert.equal((await s.get(k))?.value, '50');
      assert.equal((await s.get(k))?.version, 51);
      // Interleaving is the engine's business; the count is not.
      assert.ok(conflicts >= 0);
    });

    it('a watch from an old revision delivers every later event exactly once and in order', async () => {
      const base = p('watch');
      const first = await s.put(base + 'a', '1');
      await s.put(base + 'b', '1');
      await s.put(base.slice(0, -1) + 'Z', 'not in prefix');
      await s.put(base + 'a', '2');
      await s.delete(base + 'b');
      const w = s.watch(base, { fromRevision: first.revision });
      const pending = collect(w, 8);
      // Live events while the history is being replayed.
      await s.txn({
        compare: [],
        success: [
          { type: 'put', key: base + 'c', value: '1' },
          { type: 'put', key: base + 'd', value: '1' },
        ],
      });
      for (let i = 0; i < 2; i++) await s.put(base + 'a', String(3 + i));
      const events = await withTimeout(pending, 15_000, 'watch events');
      w.close();
      assert.deepEqual(
        events.map((e) => `${e.type}:${e.key.slice(base.length)}:${e.value}`),
        ['put:a:1', 'put:b:1', 'put:a:2', 'delete:b:', 'put:c:1', 'put:d:1', 'put:a:3', 'put:a:4'],
      );
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.revision >= events[i - 1]!.revision);
      assert.equal(events[4]!.revision, events[5]!.revision, 'events of one txn share its revision');
    });

    it('a live watch sees new writes; close ends iteration', async () => {
      const base = p('live');
      const w = s.watch(base);
      const pending = collect(w, 3);
      await new Promise((r) => setTimeout(r, 50));
      await s.put(base + 'x', '1');
      await s.put(base + 'x', '2');
      await s.delete(base + 'x');
      const events = await withTimeout(pending, 10_000, 'live events');
      assert.deepEqual(events.map((e) => e.type), ['put', 'put', 'delete']);
      assert.equal(events[1]!.version, 2);
      const w2 = s.watch(base);
      const it2 = w2[Symbol.asyncIterator]();
      const next = it2.next();
      w2.close();
      const res = await withTimeout(next, 5_000, 'close ends a pending next()');
      assert.equal(res.done, true);
    });

    it("a lease's keys vanish after expiry, and watchers see the delete", async () => {
      const base = p('lease');
      const lease = await s.leaseGrant(ttl);
      assert.ok(lease.id.length > 0);
      await s.put(base + 'ephemeral', 'x', { lease: lease.id });
      await s.put(base + 'durable', 'y');
      assert.equal((await s.get(base + 'ephemeral'))?.lease, lease.id);
      const w = s.watch(base);
      const pending = collect(w, 1, 20_000);
      const events = await withTimeout(pending, 20_000, 'lease expiry delete event');
      w.close();
      assert.deepEqual(events.map((e) => `${e.type}:${e.key.slice(base.length)}`), ['delete:ephemeral']);
      assert.equal(await s.get(base + 'ephemeral'), undefined);
      assert.equal((await s.get(base + 'durable'))?.value, 'y');
      await assert.rejects(s.leaseKeepAlive(lease.id), (e) => isNexusError(e, 'NEXUS_E_STORE_LEASE_NOT_FOUND'));
    });

    it('keep-alive holds a lease past its TTL; revoke deletes its keys at once', async () => {
      const base = p('keepalive');
      const lease = await s.leaseGrant(ttl);
      await s.put(base + 'k', 'v', { lease: lease.id });
      const until = Date.now() + ttl * 1000 * 2.5;
      while (Date.now() < until) {
        assert.ok((await s.leaseKeepAlive(lease.id)) > 0);
        await new Promise((r) => setTimeout(r, (ttl * 1000) / 4));
      }
      assert.equal((await s.get(base + 'k'))?.value, 'v', 'kept alive');
      await s.leaseRevoke(lease.id);
      assert.equal(await s.get(base + 'k'), undefined);
      await assert.rejects(s.put(base + 'k2', 'v', { lease: lease.id }), (e) => isNexusError(e, 'NEXUS_E_STORE_LEASE_NOT_FOUND'));
    });

    it('compacted revisions give a clear error to watchers', async () => {
      const base = p('compact');
      const r1 = await s.put(base + 'a', '1');
      await s.put(base + 'a', '2');
      const r3 = await s.put(base + 'a', '3');
      await s.compact(r3.revision);
      const w = s.watch(base, { fromRevision: r1.revision });
      await assert.rejects(
        withTimeout(collect(w, 1), 10_000, 'compacted watch'),
        (e) => isNexusError(e, 'NEXUS_E_STORE_COMPACTED') && e.status === 410,
      );
      w.close();
      // Current state is untouched by compaction, and watching from the compact point works.
      assert.equal((await s.get(base + 'a'))?.value, '3');
      const w2 = s.watch(base, { fromRevision: r3.revision });
      const evs = await withTimeout(collect(w2, 1), 10_000, 'watch at compact revision');
      w2.close();
      assert.equal(evs[0]?.value, '3');
    });
  });
}
