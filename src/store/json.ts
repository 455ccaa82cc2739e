/** JSON documents on top of a StateStore: the few access patterns every resource uses. */
import { NexusError } from '../errors/catalogue.js';
import type { StateStore } from './types.js';

export async function getJson<T>(store: StateStore, key: string): Promise<T | undefined> {
  const kv = await store.get(key);
  return kv ? (JSON.parse(kv.value) as T) : undefined;
}

/** Every document under `prefix`, read page by page. */
export async function listJson<T>(store: StateStore, prefix: string, pageSize = 500): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  do {
    const page = await store.range(prefix, { limit: pageSize, ...(after ? { after } : {}) });
    for (const kv of page.items) out.push(JSON.parse(kv.value) as T);
    after = page.next;
  } while (after);
  return out;
}

/** Creates `key` only if it does not exist; else NEXUS_E_ALREADY_EXISTS. */
export async function createJson<T>(store: StateStore, key: string, doc: T, what: { kind: string; id: string }): Promise<number> {
  const r = await store.txn({
    compare: [{ key, target: 'version', op: '=', value: 0 }],
    success: [{ type: 'put', key, value: JSON.stringify(doc) }],
  });
  if (!r.succeeded) throw new NexusError('NEXUS_E_ALREADY_EXISTS', what);
  return r.revision;
}

/**
 * Read-modify-write with compare-and-swap on the key's modRevision, retried on conflict.
 * `mutate` returns the new document (or undefined to leave it as it is).
 */
export async function updateJson<T>(
  store: StateStore,
  key: string,
  mutate: (doc: T) => T | undefined,
  what: { kind: string; id: string },
): Promise<T> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const kv = await store.get(key);
    if (!kv) throw new NexusError('NEXUS_E_NOT_FOUND', what);
    const next = mutate(JSON.parse(kv.value) as T);
    if (next === undefined) return JSON.parse(kv.value) as T;
    const r = await store.txn({
      compare: [{ key, target: 'modRevision', op: '=', value: kv.modRevision }],
      success: [{ type: 'put', key, value: JSON.stringify(next) }],
    });
    if (r.succeeded) return next;
  }
  throw new NexusError('NEXUS_E_CONFLICT', { detail: `too much contention updating ${what.kind} ${what.id}; retry` });
}
