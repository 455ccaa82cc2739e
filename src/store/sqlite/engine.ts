/**
 * The embedded StateStore engine: better-sqlite3 in WAL mode with synchronous=FULL, so every
 * acknowledged write is on disk. One process owns the file (the single `nexus server`/`nexus dev`);
 * watchers are fed in-process right after each commit.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { NexusError } from '../../errors/catalogue.js';
import { compareHolds } from '../compare.js';
import { EventQueue } from '../event-queue.js';
import type {
  Clock, DeleteResult, KeyValue, LeaseGrant, PutOptions, PutResult, RangeOptions, RangeResult,
  StateStore, TxnOp, TxnOpResult, TxnRequest, TxnResult, Watch, WatchEvent, WatchOptions,
} from '../types.js';
import { SCHEMA, prefixEnd } from './schema.js';
import { OwnerLock } from './owner-lock.js';
import { prepareStatements, type Statements, type KvRow, type LogRow } from './statements.js';

export interface SqliteStoreOptions {
  /** Path of the database file; its directory is created if missing. */
  path: string;
  /** Clock for lease expiry, in milliseconds. @default Date.now */
  clock?: Clock;
  /** How often expired leases are swept, in milliseconds. @default 200 */
  sweepIntervalMs?: number;
}

interface Watcher {
  prefix: string;
  queue: EventQueue<WatchEvent>;
}

function toKv(row: KvRow): KeyValue {
  return {
    key: row.key,
    value: row.value,
    createRevision: row.create_revision,
    modRevision: row.mod_revision,
    version: row.version,
    ...(row.lease ? { lease: String(row.lease) } : {}),
  };
}

function toEvent(row: LogRow): WatchEvent {
  return {
    type: row.type === 0 ? 'put' : 'delete',
    key: row.key,
    value: row.value,
    revision: row.revision,
    createRevision: row.create_revision,
    version: row.version,
  };
}


/** One write in progress: collects log rows at a single revision. */
class WriteBatch {
  sub = 0;
  readonly events: WatchEvent[] = [];
  constructor(readonly revision: number) {}
}

export class SqliteStore implements StateStore {
  readonly engine = 'sqlite';
  private readonly watchers = new Set<Watcher>();
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  private pending: { request: TxnRequest; resolve: (r: TxnResult) => void; reject: (e: unknown) => void }[] = [];
  /** One SQLite transaction for a group; each request runs in its own savepoint. */
  private readonly runGroup: Database.Transaction<(group: { request: TxnRequest }[], out: unknown[]) => void>;

  private constructor(
    private readonly db: Database.Database,
    private readonly st: Statements,
    private readonly clock: Clock,
    sweepIntervalMs: number,
    private readonly lock: OwnerLock,
  ) {
    const one = db.transaction((request: TxnRequest) => this.applyTxn(request));
    this.runGroup = db.transaction((group: { request: TxnRequest }[], out: unknown[]) => {
      for (const { request } of group) {
        try {
          out.push({ ok: true, ...one(request) });
        } catch (error) {
          out.push({ ok: false, error });
        }
      }
    });
    this.sweepTimer = setInterval(() => this.sweepExpiredLeases(), sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Opens (creating if needed) the database file. */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    mkdirSync(dirname(options.path), { recursive: true });
    const lock = OwnerLock.acquire(`${options.path}.lock`);
    let db: Database.Database;
    try {
      db = new Database(options.path);
    } catch (err) {
      lock.release();
      throw new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail: `cannot open ${options.path}: ${(err as Error).message}` }, { cause: err });
    }
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    const clock = options.clock ?? Date.now;
    const st = prepareStatements(db);
    // As etcd does on restart: leases get a full TTL again, so downtime of the store itself does
    // not expire every lease at once.
    st.refreshLeases.run(clock());
    return new SqliteStore(db, st, clock, options.sweepIntervalMs ?? 200, lock);
  }

  private check(): void {
    if (this.closed) throw new NexusError('NEXUS_E_STORE_CLOSED');
  }

  private currentRevision(): number {
    return (this.st.getMeta.get('revision') as { value: number }).value;
  }

  async revision(): Promise<number> {
    this.check();
    return this.currentRevision();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.check();
    const row = this.st.getKv.get(key) as KvRow | undefined;
    return row ? toKv(row) : undefined;
  }

  async range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    this.check();
    const limit = options.limit && options.limit > 0 ? options.limit : -1;
    const start = options.after !== undefined && options.after >= prefix ? options.after : undefined;
    const end = prefixEnd(prefix);
    const read = this.db.transaction(() => {
      const rows = (start === undefined
        ? this.st.rangeFrom.all(prefix, end, end, limit === -1 ? -1 : limit + 1)
        : this.st.rangeAfter.all(start, end, end, limit === -1 ? -1 : limit + 1)) as KvRow[];
      return { rows, revision: this.currentRevision() };
    });
    const { rows, revision } = read();
    const more = limit !== -1 && rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(toKv);
    return { items, revision, ...(more ? { next: items[items.length - 1]!.key } : {}) };
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<PutResult> {
    const r = await this.txn({ compare: [], success: [{ type: 'put', key, value, ...(options.lease ? { lease: options.lease } : {}) }] });
    const res = r.results[0] as { prev?: KeyValue };
    return { revision: r.revision, ...(res.prev ? { prev: res.prev } : {}) };
  }

  async delete(key: string): Promise<DeleteResult> {
    const r = await this.txn({ compare: [], success: [{ type: 'delete', key }] });
    return { revision: r.revision, deleted: (r.results[0] as { deleted: number }).deleted };
  }

  async deletePrefix(prefix: string): Promise<DeleteResult> {
    const r = await this.txn({ compare: [], success: [{ type: 'deletePrefix', prefix }] });
    return { revision: r.revision, deleted: (r.results[0] as { deleted: number }).deleted };
  }

  /**
   * Transactions issued in the same tick are committed together (group commit): one SQLite
   * transaction and one fsync for the whole group, each request in its own savepoint with its
   * own revision, so a failing request rolls back alone. Nothing resolves before the group's
   * commit is durable.
   */
  txn(request: TxnRequest): Promise<TxnResult> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ request, resolve, reject });
      if (this.pending.length === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    const group = this.pending;
    this.pending = [];
    if (this.closed) {
      for (const p of group) p.reject(new NexusError('NEXUS_E_STORE_CLOSED'));
      return;
    }
    const outcomes: ({ ok: true; result: TxnResult; batch?: WriteBatch } | { ok: false; error: unknown })[] = [];
    try {
      this.runGroup.immediate(group, outcomes);
    } catch (err) {
      for (const p of group) p.reject(err);
      return;
    }
    group.forEach((p, i) => {
      const o = outcomes[i]!;
      if (!o.ok) return p.reject(o.error);
      if (o.batch) this.publish(o.batch.events);
      p.resolve(o.result);
    });
  }

  private applyTxn(request: TxnRequest): { result: TxnResult; batch?: WriteBatch } {
    const succeeded = request.compare.every((c) => {
      const row = this.st.getKv.get(c.key) as KvRow | undefined;
      return compareHolds(row ? toKv(row) : undefined, c);
    });
    const ops = succeeded ? request.success : request.failure ?? [];
    const current = this.currentRevision();
    const batch = new WriteBatch(current + 1);
    const results = ops.map((op) => this.applyOp(op, batch));
    if (batch.events.length > 0) this.st.setMeta.run(batch.revision, 'revision');
    const revision = batch.events.length > 0 ? batch.revision : current;
    return { result: { succeeded, revision, results }, ...(batch.events.length > 0 ? { batch } : {}) };
  }

  private applyOp(op: TxnOp, batch: WriteBatch): TxnOpResult {
    switch (op.type) {
      case 'get': {
        const row = this.st.getKv.get(op.key) as KvRow | undefined;
        return row ? { type: 'get', kv: toKv(row) } : { type: 'get' };
      }
      case 'put': {
        const lease = op.lease ? Number(op.lease) : 0;
        if (lease && !this.st.getLease.get(lease)) throw new NexusError('NEXUS_E_STORE_LEASE_NOT_FOUND', { lease: op.lease });
        const prevRow = this.st.getKv.get(op.key) as KvRow | undefined;
        const createRevision = prevRow ? prevRow.create_revision : batch.revision;
        const version = prevRow ? prevRow.version + 1 : 1;
        this.st.upsertKv.run(op.key, op.value, createRevision, batch.revision, version, lease);
        this.log(batch, 0, op.key, op.value, createRevision, version);
        return prevRow ? { type: 'put', prev: toKv(prevRow) } : { type: 'put' };
      }
      case 'delete': {
        const row = this.st.getKv.get(op.key) as KvRow | undefined;
        if (!row) return { type: 'delete', deleted: 0 };
        this.deleteRow(row, batch);
        return { type: 'delete', deleted: 1 };
      }
      case 'deletePrefix': {
        const end = prefixEnd(op.prefix);
        const rows = this.st.rangeFrom.all(op.prefix, end, end, -1) as KvRow[];
        for (const row of rows) this.deleteRow(row, batch);
        return { type: 'deletePrefix', deleted: rows.length };
      }
    }
  }

  private deleteRow(row: KvRow, batch: WriteBatch): void {
    this.st.deleteKv.run(row.key);
    this.log(batch, 1, row.key, '', 0, 0);
  }

  private log(batch: WriteBatch, type: 0 | 1, key: string, value: string, createRevision: number, version: number): void {
    const sub = batch.sub++;
    this.st.insertLog.run(batch.revision, sub, type, key, value, createRevision, version);
    batch.events.push({ type: type === 0 ? 'put' : 'delete', key, value, revision: batch.revision, createRevision, version });
  }

  private publish(events: WatchEvent[]): void {
    for (const w of this.watchers) {
      for (const ev of events) if (ev.key.startsWith(w.prefix)) w.queue.push(ev);
    }
  }

  watch(prefix: string, options: WatchOptions = {}): Watch {
    this.check();
    const watcher: Watcher = { prefix, queue: new EventQueue<WatchEvent>(() => this.watchers.delete(watcher)) };
    const from = options.fromRevision;
    if (from !== undefined) {
      const compactRevision = (this.st.getMeta.get('compact_revision') as { value: number }).value;
      if (from < compactRevision) {
        watcher.queue.fail(new NexusError('NEXUS_E_STORE_COMPACTED', { revision: from, compactRevision }));
      } else {
        // History and registration happen in one synchronous step: no write can slip between them.
        const end = prefixEnd(prefix);
        for (const row of this.st.history.iterate(from, prefix, end, end) as Iterable<LogRow>) watcher.queue.push(toEvent(row));
      }
    }
    if (!watcher.queue.isClosed) this.watchers.add(watcher);
    return {
      [Symbol.asyncIterator]: () => watcher.queue[Symbol.asyncIterator](),
      close: () => {
        this.watchers.delete(watcher);
        watcher.queue.close();
      },
    };
  }

  async leaseGrant(ttlSeconds: number): Promise<LeaseGrant> {
    this.check();
    const ttl = Math.max(1, Math.round(ttlSeconds));
    const grant = this.db.transaction(() => {
      const id = (this.st.getMeta.get('lease_seq') as { value: number }).value + 1;
      this.st.setMeta.run(id, 'lease_seq');
      this.st.insertLease.run(id, ttl, this.clock() + ttl * 1000);
      return id;
    });
    return { id: String(grant.immediate()), ttlSeconds: ttl };
  }

  async leaseKeepAlive(id: string): Promise<number> {
    this.check();
    const row = this.st.getLease.get(Number(id)) as { ttl: number; expires_at: number } | undefined;
    if (!row || row.expires_at <= this.clock()) throw new NexusError('NEXUS_E_STORE_LEASE_NOT_FOUND', { lease: id });
    this.st.renewLease.run(this.clock() + row.ttl * 1000, Number(id));
    return row.ttl;
  }

  async leaseRevoke(id: string): Promise<void> {
    this.check();
    if (!this.revokeLease(Number(id))) throw new NexusError('NEXUS_E_STORE_LEASE_NOT_FOUND', { lease: id });
  }

  /** Deletes the lease and its keys at one new revision; false if it did not exist. */
  private revokeLease(id: number): boolean {
    const run = this.db.transaction((): WriteBatch | undefined => {
      if (!this.st.getLease.get(id)) return undefined;
      const batch = new WriteBatch(this.currentRevision() + 1);
      for (const row of this.st.keysOfLease.all(id) as KvRow[]) this.deleteRow(row, batch);
      this.st.deleteLease.run(id);
      if (batch.events.length > 0) this.st.setMeta.run(batch.revision, 'revision');
      return batch;
    });
    const batch = run.immediate();
    if (!batch) return false;
    if (batch.events.length > 0) this.publish(batch.events);
    return true;
  }

  private sweepExpiredLeases(): void {
    if (this.closed) return;
    const expired = this.st.expiredLeases.all(this.clock()) as { id: number }[];
    for (const { id } of expired) this.revokeLease(id);
  }

  async compact(revision: number): Promise<void> {
    this.check();
    const current = this.currentRevision();
    if (revision > current) throw new NexusError('NEXUS_E_STORE_FUTURE_REVISION', { revision, current });
    const run = this.db.transaction(() => {
      const compacted = (this.st.getMeta.get('compact_revision') as { value: number }).value;
      if (revision <= compacted) throw new NexusError('NEXUS_E_STORE_COMPACTED', { revision, compactRevision: compacted });
      this.st.compactLog.run(revision);
      this.st.setMeta.run(revision, 'compact_revision');
    });
    run.immediate();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pending.length > 0) this.flush();
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const w of this.watchers) w.queue.close();
    this.watchers.clear();
    this.db.close();
    this.lock.release();
  }
}
