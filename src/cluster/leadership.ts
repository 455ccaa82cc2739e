/**
 * Leadership: exactly one server runs the controllers, and every controller write is conditional
 * on still holding leadership (a compare on the leader key inside the same transaction), so a
 * deposed leader can never write. On SQLite the single server always leads; on etcd leadership is
 * a key attached to a lease (see docs/adr/003-leadership.md).
 */
import { EventEmitter } from 'node:events';
import { NexusError } from '../errors/catalogue.js';
import { keys } from '../store/keys.js';
import type { Compare, StateStore, TxnRequest, TxnResult } from '../store/types.js';

export type LeadershipState = 'follower' | 'leader' | 'stopped';

export interface Leadership {
  readonly state: LeadershipState;
  /** The compare that holds only while this server leads. */
  guard(): Compare[];
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Called with the new state on every change. */
  on(event: 'change', listener: (state: LeadershipState) => void): this;
}

/** Runs `request` only if this server still leads; throws NEXUS_E_NOT_LEADER otherwise. */
export async function leaderTxn(store: StateStore, leadership: Leadership, request: TxnRequest): Promise<TxnResult> {
  if (leadership.state !== 'leader') throw new NexusError('NEXUS_E_NOT_LEADER');
  const guard = leadership.guard();
  const guardKey = guard[0]!.key;
  const r = await store.txn({
    compare: [...guard, ...request.compare],
    success: request.success,
    failure: [{ type: 'get', key: guardKey }, ...(request.failure ?? [])],
  });
  if (!r.succeeded) {
    const held = r.results[0] as { kv?: { value: string; createRevision: number } };
    const stillLeader = guard.every((c) => c.target !== 'createRevision' || held.kv?.createRevision === c.value);
    if (!stillLeader) throw new NexusError('NEXUS_E_NOT_LEADER');
    return { ...r, results: r.results.slice(1) };
  }
  return r;
}

abstract class BaseLeadership extends EventEmitter implements Leadership {
  protected current: LeadershipState = 'stopped';
  protected leaderCreateRevision = 0;
  constructor(protected readonly store: StateStore, readonly serverId: string) {
    super();
  }
  get state(): LeadershipState {
    return this.current;
  }
  protected set(state: LeadershipState): void {
    if (state === this.current) return;
    this.current = state;
    this.emit('change', state);
  }
  guard(): Compare[] {
    return [{ key: keys.leader(), target: 'createRevision', op: '=', value: this.leaderCreateRevision }];
  }
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
}

/** SQLite: one server per store file, so it always leads. It still writes the leader key. */
export class SingleLeadership extends BaseLeadership {
  async start(): Promise<void> {
    await this.store.delete(keys.leader());
    const r = await this.store.put(keys.leader(), JSON.stringify({ serverId: this.serverId }));
    this.leaderCreateRevision = r.revision;
    this.set('leader');
  }
  async stop(): Promise<void> {
    this.set('stopped');
  }
}

export interface LeaseLeadershipOptions {
  /** Lease TTL of the leader key, in seconds. @default 5 */
  ttlSeconds?: number;
}

/** etcd: campaign by creating the leader key on a lease; keep it alive; step down on failure. */
export class LeaseLeadership extends BaseLeadership {
  private lease: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watchClose: (() => void) | undefined;
  private readonly ttl: number;

  constructor(store: StateStore, serverId: string, options: LeaseLeadershipOptions = {}) {
    super(store, serverId);
    this.ttl = options.ttlSeconds ?? 5;
  }

  async start(): Promise<void> {
    this.set('follower');
    await this.campaign();
    this.timer = setInterval(() => void this.tick(), (this.ttl * 1000) / 3);
    this.timer.unref();
    const w = this.store.watch(keys.leader());
    this.watchClose = () => w.close();
    void (async () => {
      try {
        for await (const ev of w) if (ev.type === 'delete' && this.current === 'follower') await this.campaign();
      } catch {
        /* the periodic tick campaigns again */
      }
    })();
  }

  private async campaign(): Promise<void> {
    if (this.current === 'stopped') return;
    try {
      if (!this.lease) this.lease = (await this.store.leaseGrant(this.ttl)).id;
      const r = await this.store.txn({
        compare: [{ key: keys.leader(), target: 'createRevision', op: '=', value: 0 }],
        success: [{ type: 'put', key: keys.leader(), value: JSON.stringify({ serverId: this.serverId }), lease: this.lease }],
      });
      if (r.succeeded) {
        this.leaderCreateRevision = r.revision;
        this.set('leader');
      }
    } catch {
      this.lease = undefined;
    }
  }

  private async tick(): Promise<void> {
    if (this.current === 'stopped') return;
    if (this.current === 'leader' && this.lease) {
      try {
        await this.store.leaseKeepAlive(this.lease);
        return;
      } catch {
        this.lease = undefined;
        this.set('follower');
      }
    }
    await this.campaign();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.watchClose?.();
    const lease = this.lease;
    this.lease = undefined;
    this.set('stopped');
    if (lease) await this.store.leaseRevoke(lease).catch(() => {});
  }
}
