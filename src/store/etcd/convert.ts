/**
 * Conversions between NEXUS store types and etcd's wire shapes (the `etcd3` client's raw RPC
 * messages), plus the mapping of etcd/gRPC errors onto the NEXUS error catalogue.
 */
import { ClientClosedError, EtcdLeaseInvalidError, isRecoverableError } from 'etcd3';
import type { ICompare, IKeyValue, IRequestOp, IResponseOp } from 'etcd3';
import { NexusError } from '../../errors/catalogue.js';
import type { Compare, KeyValue, TxnOp, TxnOpResult } from '../types.js';

/** Maps NEXUS keys into the store's etcd namespace and back. */
export class KeySpace {
  private readonly ns: Buffer;

  constructor(prefix: string) {
    this.ns = Buffer.from(prefix, 'utf8');
  }

  key(key: string): Buffer {
    return Buffer.concat([this.ns, Buffer.from(key, 'utf8')]);
  }

  /** The etcd key range `[key, rangeEnd)` holding every NEXUS key that starts with `prefix`. */
  prefix(prefix: string): { key: Buffer; range_end: Buffer } {
    const key = this.key(prefix);
    // An empty namespaced prefix means "all keys": etcd spells that key = range_end = '\0'.
    if (key.length === 0) return { key: Buffer.from([0]), range_end: Buffer.from([0]) };
    return { key, range_end: prefixEnd(key) };
  }

  unkey(raw: Buffer): string {
    return raw.subarray(this.ns.length).toString('utf8');
  }

  kv(raw: IKeyValue | null | undefined): KeyValue | undefined {
    if (!raw || raw.key === undefined || raw.key === null) return undefined;
    const lease = raw.lease && raw.lease !== '0' ? raw.lease : undefined;
    return {
      key: this.unkey(raw.key),
      value: raw.value ? raw.value.toString('utf8') : '',
      createRevision: Number(raw.create_revision),
      modRevision: Number(raw.mod_revision),
      version: Number(raw.version),
      ...(lease ? { lease } : {}),
    };
  }

  compare(c: Compare): ICompare {
    const result = ({ '=': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const)[c.op];
    const key = this.key(c.key);
    switch (c.target) {
      case 'modRevision':
        return { key, result, target: 'Mod', mod_revision: Number(c.value) };
      case 'createRevision':
        return { key, result, target: 'Create', create_revision: Number(c.value) };
      case 'version':
        return { key, result, target: 'Version', version: Number(c.value) };
      case 'value':
        return { key, result, target: 'Value', value: Buffer.from(String(c.value), 'utf8') };
    }
  }

  op(op: TxnOp): IRequestOp {
    switch (op.type) {
      case 'put':
        return { request_put: { key: this.key(op.key), value: Buffer.from(op.value, 'utf8'), lease: leaseId(op.lease), prev_kv: true } };
      case 'delete':
        return { request_delete_range: { key: this.key(op.key) } };
      case 'deletePrefix':
        return { request_delete_range: this.prefix(op.prefix) };
      case 'get':
        return { request_range: { key: this.key(op.key) } };
    }
  }

  opResult(op: TxnOp, res: IResponseOp): TxnOpResult {
    switch (op.type) {
      case 'put': {
        const prev = this.kv(res.response_put?.prev_kv);
        return prev ? { type: 'put', prev } : { type: 'put' };
      }
      case 'delete':
      case 'deletePrefix':
        return { type: op.type, deleted: Number(res.response_delete_range?.deleted ?? 0) };
      case 'get': {
        const kv = this.kv(res.response_range?.kvs?.[0]);
        return kv ? { type: 'get', kv } : { type: 'get' };
      }
    }
  }
}

/** The smallest key greater than every key starting with `prefix` ('\0' = end of keyspace). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * A NEXUS lease id (decimal string) as the int64 etcd wants; '0' (no lease) when absent. A
 * malformed id cannot name an existing lease, so it fails as "not found" rather than as a
 * protobuf encoding error.
 */
export function leaseId(id: string | undefined): string {
  if (id === undefined) return '0';
  if (!/^[1-9]\d{0,18}$/.test(id)) throw new NexusError('NEXUS_E_STORE_LEASE_NOT_FOUND', { lease: id });
  return id;
}

const CLIENT_MISTAKES = ['duplicate key given in txn request', 'too many operations in txn request', 'request is too large'];

/**
 * Translates what the etcd3 client throws into a NexusError: a missing lease, a closed client,
 * a request etcd refuses by shape (a txn writing one key twice, too many ops), else unavailable.
 */
export function toNexusError(err: unknown, ctx: { lease?: string } = {}): NexusError {
  if (err instanceof NexusError) return err;
  if (err instanceof EtcdLeaseInvalidError) return new NexusError('NEXUS_E_STORE_LEASE_NOT_FOUND', { lease: ctx.lease }, { cause: err });
  if (err instanceof ClientClosedError) return new NexusError('NEXUS_E_STORE_CLOSED', {}, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  const mistake = CLIENT_MISTAKES.find((m) => message.includes(m));
  if (mistake) return new NexusError('NEXUS_E_VALIDATION', { field: 'txn', detail: `etcd refused it: ${mistake}` }, { cause: err });
  return new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail: `etcd: ${message}` }, { cause: err });
}

/** Whether a failed call may be retried (the error is a network/server fault, not an answer). */
export function isTransient(err: unknown): boolean {
  return err instanceof Error && isRecoverableError(err);
}
