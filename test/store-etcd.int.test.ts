/**
 * The etcd engine against a real etcd (Debian's etcd-server) on loopback: the shared conformance
 * suite, plus the etcd-specific behaviours (namespacing, reconnects) it cannot express.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { runStoreConformance } from '../src/store/conformance.js';
import { EtcdStore } from '../src/store/etcd/engine.js';
import { startEtcd, type RunningEtcd } from '../src/testing/etcd.js';
import type { WatchEvent } from '../src/store/types.js';

let etcd: RunningEtcd | undefined;
let seq = 0;

/** One etcd per file; each opened store gets its own namespace so cases never see each other. */
async function openFresh(): Promise<{ store: EtcdStore; close(): Promise<void> }> {
  etcd ??= await startEtcd();
  const store = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: `/t${process.pid}-${++seq}` });
  return { store, close: () => store.close() };
}

after(async () => {
  await etcd?.stop();
});

runStoreConformance('etcd', openFresh, { leaseTtlSeconds: 1 });

async function take(iter: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  while (out.length < n) {
    const r = await iter.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('etcd engine specifics', () => {
  let opened: { store: EtcdStore; close(): Promise<void> };
  before(async () => {
    opened = await openFresh();
  });
  after(async () => {
    await opened.close();
  });

  it('keeps keys inside its namespace and maps revisions 1:1 to etcd', async () => {
    const s = opened.store;
    const put = await s.put('/a', 'x');
    const raw = new Etcd3({ hosts: etcd!.endpoint });
    try {
      const all = await raw.getAll().prefix(`/t${process.pid}-${seq}/`).keys();
      assert.deepEqual(all, [`/t${process.pid}-${seq}/a`]);
      const rev = await raw.get(`/t${process.pid}-${seq}/a`).exec();
      assert.equal(Number(rev.header.revision), put.revision);
      assert.equal((await s.range('')).items.map((kv) => kv.key).join(','), '/a');
    } finally {
      raw.close();
    }
  });

  it('a watch replaying history in several batches delivers every event exactly once', async () => {
    const s = opened.store;
    const base = '/many/';
    let first = 0;
    // etcd replays at most 1000 revisions per response; 2500 forces several.
    for (let i = 0; i < 2500; i++) {
      const r = await s.put(`${base}${i % 7}`, String(i));
      if (i === 0) first = r.revision;
    }
    const w = s.watch(base, { fromRevision: first });
    const it = w[Symbol.asyncIterator]();
    const events = await take(it, 2500);
    w.close();
    assert.equal(events.length, 2500);
    events.forEach((ev, i) => {
      assert.equal(ev.revision, first + i);
      assert.equal(ev.value, String(i));
    });
  });

  it('a watch survives an etcd restart without losing or repeating events', async () => {
    const s = opened.store;
    const base = '/restart/';
    const first = await s.put(`${base}k`, '0');
    for (let i = 1; i < 1500; i++) await s.put(`${base}k`, String(i));
    const w = s.watch(base, { fromRevision: first.revision });
    const it = w[Symbol.asyncIterator]();
    const before = await take(it, 10);
    await etcd!.restart();
    // Reads retry across the outage; writes would not, so wait until etcd answers again.
    for (let i = 0; ; i++) {
      try {
        await s.revision();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (let i = 1500; i < 1600; i++) await s.put(`${base}k`, String(i));
    const rest = await take(it, 1590);
    w.close();
    const values = [...before, ...rest].map((ev) => Number(ev.value));
    assert.deepEqual(values, Array.from({ length: 1600 }, (_, i) => i));
  });

  it('rejects a malformed lease id as not found, and a closed store as closed', async () => {
    const s = opened.store;
    await assert.rejects(s.put('/l', 'v', { lease: 'nope' }), { code: 'NEXUS_E_STORE_LEASE_NOT_FOUND' });
    await assert.rejects(s.leaseKeepAlive('12345'), { code: 'NEXUS_E_STORE_LEASE_NOT_FOUND' });
    const extra = await openFresh();
    await extra.close();
    await assert.rejects(extra.store.get('/x'), { code: 'NEXUS_E_STORE_CLOSED' });
  });

  it('compact is idempotent and refuses a future revision', async () => {
    const s = opened.store;
    const r = await s.put('/c', '1');
    await s.compact(r.revision);
    await s.compact(r.revision - 1);
    await assert.rejects(s.compact(r.revision + 1000), { code: 'NEXUS_E_STORE_FUTURE_REVISION' });
  });
});
