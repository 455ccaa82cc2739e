/**
 * The etcd engine of the state store: NEXUS's StateStore over a real etcd cluster, for HA and
 * several `nexus server`s sharing one state. Revisions, leases, compares and watches are etcd's
 * own, so the mapping is nearly 1:1; this file adds the namespace prefix, the error mapping and
 * the choice of when a failed call may be retried.
 *
 * Built on the `etcd3` client's raw RPC stubs (`kv`, `leaseClient`, `watchClient`), not on its
 * builders: the builders add a namespace layer, string conversions and a watch manager that can
 * skip events across reconnects (see watch.ts).
 */
import { Etcd3, type IOptions } from 'etcd3';
import { NexusError } from '../../errors/catalogue.js';
import type {
  DeleteResult,
  KeyValue,
  LeaseGrant,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult,
  StateStore,
  TxnRequest,
  TxnResult,
  Watch,
  WatchOptions,
} from '../types.js';
import { KeySpace, isTransient, leaseId, toNexusError } from './convert.js';
import { KeepAliveChannel } from './keepalive.js';
import { EtcdWatch } from './watch.js';

export interface EtcdStoreOptions {
  /** etcd client URLs, e.g. `['http://10.0.0.1:2379', 'http://10.0.0.2:2379']`. */
  endpoints: string[];
  /** Namespace: every NEXUS key is stored under this etcd key prefix. @default '' */
  prefix?: string;
  /** Deadline of each unary call (streams have none). @default 10000 */
  requestTimeoutMs?: number;
  /** A watch fails with NEXUS_E_STORE_UNAVAILABLE once etcd has been unreachable this long. @default 60000 */
  watchGiveUpMs?: number;
}

type Config = Required<EtcdStoreOptions>;

function compileOptions(opts: EtcdStoreOptions): Readonly<Config> {
  if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0) {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'store.endpoints', detail: 'at least one etcd endpoint is required' });
  }
  return Object.freeze({
    endpoints: [...opts.endpoints],
    prefix: opts.prefix ?? '',
    requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
    watchGiveUpMs: opts.watchGiveUpMs ?? 60_000,
  });
}

type GlobalPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * etcd3's default global policy retries every call up to three times on network errors, writes
 * included: a put or txn that reached etcd before the connection dropped would run twice (a CAS
 * would then report failure for a write that happened). So the client makes one attempt and this
 * engine retries only reads and keep-alives (`call(..., { idempotent: true })`).
 */
const SINGLE_ATTEMPT = {
  execute: <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })),
} as unknown as GlobalPolicy;

const READ_ATTEMPTS = 3;
const PROBE_KEY = Buffer.from([0]);

/**
 * @example
 * const store = await EtcdStore.open({ endpoints: ['http://127.0.0.1:2379'], prefix: '/nexus' });
 * const { revision } = await store.put('/devices/d1', JSON.stringify(device));
 * for await (const ev of store.watch('/devices/', { fromRevision: revision })) console.log(ev);
 */
export class EtcdStore implements StateStore {
  readonly engine = 'etcd';
  private readonly keys: KeySpace;
  private readonly keepAlive: KeepAliveChannel;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  private constructor(
    private readonly client: Etcd3,
    private readonly config: Readonly<Config>,
  ) {
    this.keys = new KeySpace(config.prefix);
    this.keepAlive = new KeepAliveChannel(client.leaseClient, config.requestTimeoutMs);
  }

  /** Connects and checks that etcd answers (fails with NEXUS_E_STORE_UNAVAILABLE otherwise). */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const config = compileOptions(options);
    const client = new Etcd3({
      hosts: config.endpoints,
      faultHandling: { global: SINGLE_ATTEMPT },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + config.requestTimeoutMs }),
      grpcOptions: {
        // Large ranges and watch catch-ups exceed gRPC's 4 MiB default.
        'grpc.max_receive_message_length': 2 ** 31 - 1,
        // Notice a dead server under an idle watch (etcd accepts pings every 5 s or slower).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    });
    const store = new EtcdStore(client, config);
    try {
      await store.revision();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call(() => this.client.kv.range({ key: this.keys.key(key) }), { idempotent: true });
    return this.keys.kv(res.kvs[0]);
  }

  async range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    const bounds = this.keys.prefix(prefix);
    let key = bounds.key;
    if (options.after !== undefined) {
      // Strictly after `after`: its immediate successor in byte order is `after + '\0'`.
      const successor = Buffer.concat([this.keys.key(options.after), PROBE_KEY]);
      if (Buffer.compare(successor, key) > 0) key = successor;
    }
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : 0;
    const res = await this.call(() => this.client.kv.range({ key, range_end: bounds.range_end, limit }), { idempotent: true });
    const items = res.kvs.map((kv) => this.keys.kv(kv)!);
    const last = items[items.length - 1];
    return { items, revision: Number(res.header.revision), ...(res.more && last ? { next: last.key } : {}) };
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<PutResult> {
    const lease = leaseId(options.lease);
    const req = { key: this.keys.key(key), value: Buffer.from(value, 'utf8'), lease, prev_kv: true };
    const res = await this.call(() => this.client.kv.put(req), { lease: options.lease });
    const prev = this.keys.kv(res.prev_kv);
    return { revision: Number(res.header.revision), ...(prev ? { prev } : {}) };
  }

  async delete(key: string): Promise<DeleteResult> {
    const res = await this.call(() => this.client.kv.deleteRange({ key: this.keys.key(key) }));
    return { revision: Number(res.header.revision), deleted: Number(res.deleted) };
  }

  async deletePrefix(prefix: string): Promise<DeleteResult> {
    const res = await this.call(() => this.client.kv.deleteRange(this.keys.prefix(prefix)));
    return { revision: Number(res.header.revision), deleted: Number(res.deleted) };
  }

  /**
   * etcd rules apply: one txn may not write the same key twice (nor put a key inside a range it
   * deletes), and holds at most `--max-txn-ops` (default 128) ops; both fail with NEXUS_E_VALIDATION.
   */
  async txn(request: TxnRequest): Promise<TxnResult> {
    const failure = request.failure ?? [];
    const req = {
      compare: request.compare.map((c) => this.keys.compare(c)),
      success: request.success.map((op) => this.keys.op(op)),
      failure: failure.map((op) => this.keys.op(op)),
    };
    const lease = [...request.success, ...failure].find((op) => op.type === 'put' && op.lease !== undefined);
    const res = await this.call(() => this.client.kv.txn(req), { lease: lease?.type === 'put' ? lease.lease : undefined });
    const ran = res.succeeded ? request.success : failure;
    return {
      succeeded: res.succeeded,
      revision: Number(res.header.revision),
      results: ran.map((op, i) => this.keys.opResult(op, res.responses[i]!)),
    };
  }

  watch(prefix: string, options: WatchOptions = {}): Watch {
    this.assertOpen();
    const from = options.fromRevision;
    const w = new EtcdWatch({
      client: this.client.watchClient,
      keys: this.keys,
      range: this.keys.prefix(prefix),
      fromRevision: from !== undefined && from > 0 ? from : undefined,
      giveUpAfterMs: this.config.watchGiveUpMs,
      onEnd: (ended) => this.watches.delete(ended),
    });
    this.watches.add(w);
    return w;
  }

  /** etcd may round the TTL up to its minimum (1.5 election timeouts); the answer says what it chose. */
  async leaseGrant(ttlSeconds: number): Promise<LeaseGrant> {
    const res = await this.call(() => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    if (res.error) throw new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail: `etcd refused the lease: ${res.error}` });
    return { id: String(res.ID), ttlSeconds: Number(res.TTL) };
  }

  async leaseKeepAlive(id: string): Promise<number> {
    const lease = leaseId(id);
    return this.call(() => this.keepAlive.renew(lease), { idempotent: true, lease: id });
  }

  async leaseRevoke(id: string): Promise<void> {
    const lease = leaseId(id);
    await this.call(() => this.client.leaseClient.leaseRevoke({ ID: lease }), { lease: id });
  }

  /** Compacting at or below an earlier compaction is a no-op; a future revision is refused. */
  async compact(revision: number): Promise<void> {
    try {
      await this.call(() => this.client.kv.compact({ revision }));
    } catch (err) {
      const message = err instanceof Error ? err.message : '';
      if (message.includes('required revision has been compacted')) return;
      if (message.includes('required revision is a future revision')) {
        throw new NexusError('NEXUS_E_STORE_FUTURE_REVISION', { revision, current: await this.revision() }, { cause: err });
      }
      throw err;
    }
  }

  async revision(): Promise<number> {
    const res = await this.call(() => this.client.kv.range({ key: PROBE_KEY, count_only: true }), { idempotent: true });
    return Number(res.header.revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.close();
    this.keepAlive.close();
    this.client.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new NexusError('NEXUS_E_STORE_CLOSED');
  }

  /**
   * Runs one etcd call, mapping failures to NexusErrors. Idempotent calls are retried on network
   * faults (with a short backoff); writes never are, since one may have been applied.
   */
  private async call<T>(fn: () => Promise<T>, opts: { idempotent?: boolean; lease?: string | undefined } = {}): Promise<T> {
    this.assertOpen();
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (this.closed) throw new NexusError('NEXUS_E_STORE_CLOSED', {}, { cause: err });
        if (!opts.idempotent || attempt >= READ_ATTEMPTS || !isTransient(err)) throw toNexusError(err, { lease: opts.lease });
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }
}
