import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isNexusError } from '../../errors/catalogue.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '../conformance.js';
import { SqliteStore } from './engine.js';

runStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-sqlite-'));
  const store = await SqliteStore.open({ path: join(dir, 'state.db'), sweepIntervalMs: 50 });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite engine specifics', () => {
  it('one process owns a store file; a stale lock from a dead owner is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-sqlite-lock-'));
    const path = join(dir, 'state.db');
    try {
      const a = await SqliteStore.open({ path });
      await assert.rejects(SqliteStore.open({ path }), (e) => isNexusError(e, 'NEXUS_E_STORE_UNAVAILABLE') && /another process/.test(e.message));
      await a.close();
      writeFileSync(`${path}.lock`, '999999999'); // a pid that cannot be alive
      const b = await SqliteStore.open({ path });
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('group commit: concurrent transactions get their own revisions and fail alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-sqlite-group-'));
    const s = await SqliteStore.open({ path: join(dir, 'state.db') });
    try {
      const start = await s.revision();
      const results = await Promise.allSettled([
        s.put('/g/a', '1'),
        s.put('/g/b', '1', { lease: '424242' }),
        s.put('/g/c', '1'),
      ]);
      assert.equal(results[0]!.status, 'fulfilled');
      assert.equal(results[1]!.status, 'rejected');
      assert.ok(isNexusError((results[1] as PromiseRejectedResult).reason, 'NEXUS_E_STORE_LEASE_NOT_FOUND'));
      assert.equal(results[2]!.status, 'fulfilled');
      const revs = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ revision: number }>).value.revision);
      assert.deepEqual(revs, [start + 1, start + 2]);
      assert.equal(await s.get('/g/b'), undefined);
      assert.equal((await s.get('/g/c'))?.modRevision, start + 2);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
