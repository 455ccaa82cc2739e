/**
 * Device health: a controller (leader only) that turns heartbeat ages into `ready → unreachable →
 * down` and back to `ready` on the next heartbeat. Transitions are the only store writes health
 * makes, each through `leaderTxn`. Defaults and their reasons: docs/adr/005-device-health.md.
 *
 *   ready ──(no heartbeat for unreachableAfterMs)──▶ unreachable ──(downAfterMs)──▶ down
 *     ▲                                                   │                           │
 *     └───────────────────── a heartbeat ─────────────────┴───────────────────────────┘
 *
 * After this server gains leadership (a restart or a failover) every device that was not `down`
 * is treated as seen at `start + restartGraceMs`, so healthy agents get time to reach the new
 * leader before anyone is marked unreachable (Nomad's failover heartbeat TTL).
 */
import type { Device, DeviceState, HealthState, OperatorState } from '../resources/device.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore, TxnOp, Compare } from '../store/types.js';
import type { Controller } from './controllers.js';
import type { HeartbeatTable } from './heartbeats.js';
import { leaderTxn, type Leadership } from './leadership.js';

export interface HealthOptions {
  /** Heartbeat interval agents are told to use (below the rate cap). @default 1000 */
  heartbeatMs?: number;
  /** No heartbeat for this long: `unreachable`. @default 2500 */
  unreachableAfterMs?: number;
  /** No heartbeat for this long: `down`. @default 4000 */
  downAfterMs?: number;
  /** Extra time devices get after this server starts leading. @default 10000 */
  restartGraceMs?: number;
  /** How often heartbeat ages are checked. @default 250 */
  sweepMs?: number;
  /** Heartbeats per second before the interval (and the thresholds) stretch. @default 12000 (ADR 011) */
  maxHeartbeatsPerSecond?: number;
  /**
   * How long a device must stay `down` before its work is moved elsewhere (for the scheduler;
   * see `isWorkLost`). Separate from the state: a laptop that sleeps a minute keeps its work.
   * @default 120000
   */
  rescheduleGraceMs?: number;
}

/**
 * Where the heartbeat interval starts to stretch: past it one server would fall behind (measured
 * by bench/devices.ts on 2 cores with heartbeat streams; docs/adr/011-heartbeat-streams.md).
 */
export const DEFAULT_MAX_HEARTBEATS_PER_SECOND = 12_000;

export type ResolvedHealthOptions = Readonly<Required<HealthOptions>>;

/** Options → defaults → frozen, in one place. Throws on thresholds out of order. */
export function resolveHealthOptions(o: HealthOptions = {}): ResolvedHealthOptions {
  const r = {
    heartbeatMs: o.heartbeatMs ?? 1000,
    unreachableAfterMs: o.unreachableAfterMs ?? 2500,
    downAfterMs: o.downAfterMs ?? 4000,
    restartGraceMs: o.restartGraceMs ?? 10_000,
    sweepMs: o.sweepMs ?? 250,
    maxHeartbeatsPerSecond: o.maxHeartbeatsPerSecond ?? DEFAULT_MAX_HEARTBEATS_PER_SECOND,
    rescheduleGraceMs: o.rescheduleGraceMs ?? 120_000,
  };
  if (!(r.heartbeatMs > 0 && r.unreachableAfterMs > r.heartbeatMs && r.downAfterMs > r.unreachableAfterMs)) {
    throw new RangeError(`health thresholds must satisfy 0 < heartbeat (${r.heartbeatMs}) < unreachable (${r.unreachableAfterMs}) < down (${r.downAfterMs})`);
  }
  return Object.freeze(r);
}

/** What the pool sees: health first (a dead device is dead), else the operator's state. */
export function deviceState(health: HealthState, operatorState: OperatorState | undefined): DeviceState {
  return health === 'ready' ? operatorState ?? 'ready' : health;
}

/** A device's health, also for documents written before `health` existed. */
export function healthOf(d: Pick<Device, 'state' | 'health'>): HealthState {
  if (d.health) return d.health;
  return d.state === 'unreachable' || d.state === 'down' ? d.state : 'ready';
}

/** True once a device has been `down` for `graceMs`: its work should move (for the scheduler). */
export function isWorkLost(d: Pick<Device, 'state' | 'health' | 'healthChangedAt'>, now: number, graceMs: number): boolean {
  return healthOf(d) === 'down' && d.healthChangedAt !== undefined && now - Date.parse(d.healthChangedAt) >= graceMs;
}

/**
 * The health an observation asks for. `seenAt` is the last real heartbeat (undefined: none since
 * this leader started); `graceBase` is `leaderStart + restartGrace`.
 */
export function nextHealth(current: HealthState, now: number, seenAt: number | undefined, graceBase: number, unreachableMs: number, downMs: number): HealthState {
  if (seenAt !== undefined && now - seenAt < unreachableMs) return 'ready';
  if (current === 'down') return 'down';
  const age = now - Math.max(seenAt ?? -Infinity, graceBase);
  if (age < unreachableMs) return current; // within the grace: no news is not bad news yet
  if (age < downMs) return 'unreachable';
  return 'down';
}

interface Cached {
  health: HealthState;
  modRevision: number;
  lastHeartbeatAt: string | undefined;
}

export interface Transition {
  deviceId: string;
  name: string;
  from: HealthState;
  to: HealthState;
}

/** Most transitions written in one transaction (etcd's default limit is 128 operations). */
const BATCH = 50;

export class HealthController implements Controller {
  readonly name = 'device-health';
  private readonly cache = new Map<string, Cached>();
  private startedAt = 0;

  constructor(
    private readonly store: StateStore,
    private readonly leadership: Leadership,
    private readonly heartbeats: HeartbeatTable,
    private readonly clock: Clock,
    readonly options: ResolvedHealthOptions,
    private readonly onTransition: (t: Transition) => void = () => {},
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    this.startedAt = this.clock();
    this.cache.clear();
    const fromRevision = await this.load();
    const watch = this.store.watch(keys.devices(), { fromRevision: fromRevision + 1 });
    signal.addEventListener('abort', () => watch.close(), { once: true });
    void (async () => {
      try {
        for await (const ev of watch) {
          const id = ev.key.slice(keys.devices().length);
          if (ev.type === 'delete') this.cache.delete(id);
          else if ((this.cache.get(id)?.modRevision ?? 0) < ev.revision) this.observe(id, JSON.parse(ev.value) as Device, ev.revision);
        }
      } catch {
        /* closed on abort; a broken watch ends with leadership (the next leader reloads) */
      }
    })();
    void this.loop(signal);
  }

  /** Reads every device; returns the revision the first page was read at. */
  private async load(): Promise<number> {
    let after: string | undefined;
    let revision = 0;
    do {
      const page = await this.store.range(keys.devices(), { limit: 500, ...(after ? { after } : {}) });
      if (revision === 0) revision = page.revision;
      for (const kv of page.items) {
        const d = JSON.parse(kv.value) as Device;
        this.cache.set(kv.key.slice(keys.devices().length), { health: healthOf(d), modRevision: kv.modRevision, lastHeartbeatAt: d.lastHeartbeatAt });
      }
      after = page.next;
    } while (after);
    return revision;
  }

  /**
   * A device document changed after the initial load. A join or a registration (which another
   * server may have handled, before any heartbeat of that device reached this one) is a sign of
   * life: it moves `lastHeartbeatAt` without changing health. Transitions and operator changes are not.
   */
  private observe(id: string, d: Device, revision: number): void {
    const prev = this.cache.get(id);
    const health = healthOf(d);
    if (d.lastHeartbeatAt !== undefined && d.lastHeartbeatAt !== prev?.lastHeartbeatAt && (!prev || prev.health === health)) {
      this.heartbeats.merge(id, this.clock());
    }
    this.cache.set(id, { health, modRevision: revision, lastHeartbeatAt: d.lastHeartbeatAt });
  }

  private async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.sweep();
      } catch {
        /* NOT_LEADER or a store hiccup: the next sweep (or the next leader) tries again */
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, this.options.sweepMs);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** One pass: compute each device's health and write the changes. Exposed for tests. */
  async sweep(): Promise<Transition[]> {
    const now = this.clock();
    const scale = this.heartbeats.scale();
    const unreachableMs = this.options.unreachableAfterMs * scale;
    const downMs = this.options.downAfterMs * scale;
    const graceBase = this.startedAt + this.options.restartGraceMs;
    const due: { id: string; to: HealthState; seenAt: number | undefined }[] = [];
    for (const [id, c] of this.cache) {
      const seenAt = this.heartbeats.get(id)?.seenAt;
      const to = nextHealth(c.health, now, seenAt, graceBase, unreachableMs, downMs);
      if (to !== c.health) due.push({ id, to, seenAt });
    }
    const done: Transition[] = [];
    for (let i = 0; i < due.length; i += BATCH) done.push(...(await this.write(due.slice(i, i + BATCH), now)));
    return done;
  }

  /** Writes a batch in one guarded transaction; on a conflict, one by one (losers wait for the next sweep). */
  private async write(batch: { id: string; to: HealthState; seenAt: number | undefined }[], now: number): Promise<Transition[]> {
    const planned: { t: Transition; compare: Compare; put: TxnOp; lastHeartbeatAt: string | undefined }[] = [];
    for (const { id, to, seenAt } of batch) {
      const kv = await this.store.get(keys.device(id));
      if (!kv) continue;
      const d = JSON.parse(kv.value) as Device;
      const from = healthOf(d);
      if (from === to) {
        this.cache.set(id, { health: from, modRevision: kv.modRevision, lastHeartbeatAt: d.lastHeartbeatAt });
        continue;
      }
      const next: Device = {
        ...d,
        health: to,
        state: deviceState(to, d.operatorState),
        healthChangedAt: new Date(now).toISOString(),
        ...(seenAt !== undefined ? { lastHeartbeatAt: new Date(seenAt).toISOString() } : {}),
      };
      delete next.utilization;
      planned.push({
        t: { deviceId: id, name: d.name, from, to },
        compare: { key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision },
        put: { type: 'put', key: kv.key, value: JSON.stringify(next) },
        lastHeartbeatAt: next.lastHeartbeatAt,
      });
    }
    if (planned.length === 0) return [];
    const all = await leaderTxn(this.store, this.leadership, { compare: planned.map((p) => p.compare), success: planned.map((p) => p.put) });
    const applied = all.succeeded ? planned.map((p) => ({ p, revision: all.revision })) : [];
    if (!all.succeeded) {
      for (const p of planned) {
        const one = await leaderTxn(this.store, this.leadership, { compare: [p.compare], success: [p.put] });
        if (one.succeeded) applied.push({ p, revision: one.revision });
      }
    }
    for (const { p, revision } of applied) {
      this.cache.set(p.t.deviceId, { health: p.t.to, modRevision: revision, lastHeartbeatAt: p.lastHeartbeatAt });
      this.onTransition(p.t);
    }
    return applied.map((a) => a.p.t);
  }
}
