/**
 * The etcd-shaped state-store interface. Two engines implement it (SQLite, etcd) and one
 * conformance suite (`conformance.ts`) runs unchanged against both.
 *
 * Rules every engine keeps (see docs/adr/002-state-store.md):
 * - One global, monotonic revision. An empty store is at revision 1; every write (put, delete,
 *   or a transaction with at least one write) advances it by exactly one; all writes of one
 *   transaction share that revision.
 * - Deterministic: no wall clock, random ids or network inside store logic; the clock is passed in.
 * - Values are strings (NEXUS stores JSON).
 */

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Revision of the put that created this key (since its last delete). */
  readonly createRevision: number;
  /** Revision of the last write to this key. */
  readonly modRevision: number;
  /** Number of puts since creation; 1 after the first put. */
  readonly version: number;
  /** Lease the key is attached to, as a decimal string; absent when none. */
  readonly lease?: string;
}

export interface RangeOptions {
  /** Most keys to return. @default unlimited */
  limit?: number;
  /** Continuation: return keys strictly after this one (the `next` of the previous page). */
  after?: string;
}

export interface RangeResult {
  readonly items: KeyValue[];
  /** Set when more keys match: pass it as `after` to get the next page. */
  readonly next?: string;
  /** The store revision this page was read at. */
  readonly revision: number;
}

export interface PutOptions {
  /** Attach the key to this lease: it is deleted when the lease expires or is revoked. */
  lease?: string;
}

export interface PutResult {
  readonly revision: number;
  /** The key's previous value, if it existed. */
  readonly prev?: KeyValue;
}

export interface DeleteResult {
  readonly revision: number;
  /** How many keys were deleted (0 leaves the revision unchanged). */
  readonly deleted: number;
}

export type CompareTarget = 'modRevision' | 'createRevision' | 'version' | 'value';
export type CompareOp = '=' | '!=' | '<' | '>';

/**
 * One condition of a transaction. A missing key has modRevision, createRevision and version 0 and
 * no value (a value compare on a missing key is false, as in etcd).
 */
export interface Compare {
  key: string;
  target: CompareTarget;
  op: CompareOp;
  value: number | string;
}

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string }
  | { type: 'get'; key: string };

export type TxnOpResult =
  | { type: 'put'; prev?: KeyValue }
  | { type: 'delete'; deleted: number }
  | { type: 'deletePrefix'; deleted: number }
  | { type: 'get'; kv?: KeyValue };

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export interface TxnResult {
  /** True when every compare held and `success` ran; false when `failure` ran. */
  readonly succeeded: boolean;
  /** Store revision after the transaction. */
  readonly revision: number;
  readonly results: TxnOpResult[];
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value for puts; for deletes, empty. */
  readonly value: string;
  readonly revision: number;
  readonly createRevision: number;
  readonly version: number;
}

export interface WatchOptions {
  /**
   * Deliver every event with revision >= this, then live events. Default: only events after the
   * moment of the call. A compacted revision fails the iteration with NEXUS_E_STORE_COMPACTED.
   */
  fromRevision?: number;
}

/**
 * A watch stream: `for await (const ev of watch)`; `break` or `close()` ends it. Each event is
 * delivered exactly once and in revision order.
 */
export interface Watch extends AsyncIterable<WatchEvent> {
  close(): void;
}

export interface LeaseGrant {
  readonly id: string;
  readonly ttlSeconds: number;
}

/** The etcd-shaped store every part of NEXUS keeps its state in. */
export interface StateStore {
  /** Which engine this is ('sqlite' | 'etcd'). */
  readonly engine: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys starting with `prefix`, in byte order. */
  range(prefix: string, options?: RangeOptions): Promise<RangeResult>;
  put(key: string, value: string, options?: PutOptions): Promise<PutResult>;
  delete(key: string): Promise<DeleteResult>;
  deletePrefix(prefix: string): Promise<DeleteResult>;
  txn(request: TxnRequest): Promise<TxnResult>;
  watch(prefix: string, options?: WatchOptions): Watch;
  leaseGrant(ttlSeconds: number): Promise<LeaseGrant>;
  /** Renews the lease; returns its TTL. Fails with NEXUS_E_STORE_LEASE_NOT_FOUND once expired. */
  leaseKeepAlive(id: string): Promise<number>;
  leaseRevoke(id: string): Promise<void>;
  /** Discards history below `revision`: watches from earlier revisions fail afterwards. */
  compact(revision: number): Promise<void>;
  /** The current store revision. */
  revision(): Promise<number>;
  close(): Promise<void>;
}

/** The clock engines use for lease expiry: milliseconds, monotonic enough for TTLs. */
export type Clock = () => number;
