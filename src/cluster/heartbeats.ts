/**
 * Heartbeats live in memory, not in the store: a heartbeat costs one map update, never a write
 * (docs/adr/005-device-health.md). Every server keeps the heartbeats it received; with several
 * servers, HeartbeatRelay copies them between servers in batches, so the leader's health
 * controller sees them all. The store gets a write only when a device changes health.
 *
 * The interval agents are told to use is rate-capped: past `maxPerSecond × interval` devices it
 * stretches, so the server's heartbeat load stays bounded (Nomad's idea); the health thresholds
 * stretch with it (`scale()`).
 */
import type { Utilization } from '../resources/device.js';
import type { Clock } from '../store/types.js';
import { DEFAULT_MAX_HEARTBEATS_PER_SECOND } from './health.js';

export interface Seen {
  /** When the last heartbeat arrived, on this server's clock (ms). */
  readonly seenAt: number;
  readonly utilization?: Utilization;
}

export interface HeartbeatTableOptions {
  clock: Clock;
  /** The interval agents use while the cap is not reached, in ms. @default 1000 */
  heartbeatMs?: number;
  /** Heartbeats per second the server accepts before the interval stretches. @default DEFAULT_MAX_HEARTBEATS_PER_SECOND */
  maxPerSecond?: number;
  /** Entries not refreshed for this long are dropped (devices gone for good). @default 600000 */
  forgetAfterMs?: number;
}

export class HeartbeatTable {
  private readonly seen = new Map<string, Seen>();
  /** Devices whose heartbeat arrived here since the last relay flush. */
  private readonly dirty = new Set<string>();
  private readonly clock: Clock;
  readonly heartbeatMs: number;
  private readonly maxPerSecond: number;
  private readonly forgetAfterMs: number;
  private announced: number;
  private announcedAt = 0;
  private prunedAt = 0;

  constructor(options: HeartbeatTableOptions) {
    this.clock = options.clock;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.maxPerSecond = options.maxPerSecond ?? DEFAULT_MAX_HEARTBEATS_PER_SECOND;
    this.forgetAfterMs = options.forgetAfterMs ?? 600_000;
    this.announced = this.heartbeatMs;
  }

  get size(): number {
    return this.seen.size;
  }

  /** A heartbeat (or registration) that arrived at this server. */
  record(deviceId: string, utilization?: Utilization): void {
    // The hot path (every heartbeat): two plain object shapes, no spreads.
    const u = utilization ?? this.seen.get(deviceId)?.utilization;
    this.seen.set(deviceId, u ? { seenAt: this.clock(), utilization: u } : { seenAt: this.clock() });
    this.dirty.add(deviceId);
  }

  /** A heartbeat another server received (from the relay); older news than ours is ignored. */
  merge(deviceId: string, seenAt: number, utilization?: Utilization): void {
    const prev = this.seen.get(deviceId);
    if (prev && prev.seenAt >= seenAt) return;
    this.seen.set(deviceId, { seenAt, ...(utilization ? { utilization } : prev?.utilization ? { utilization: prev.utilization } : {}) });
  }

  get(deviceId: string): Seen | undefined {
    return this.seen.get(deviceId);
  }

  forget(deviceId: string): void {
    this.seen.delete(deviceId);
    this.dirty.delete(deviceId);
  }

  /** The entries received here since the previous call (for the relay). */
  takeDirty(): [string, Seen][] {
    const out: [string, Seen][] = [];
    for (const id of this.dirty) {
      const s = this.seen.get(id);
      if (s) out.push([id, s]);
    }
    this.dirty.clear();
    return out;
  }

  /**
   * The heartbeat interval to announce: `heartbeatMs`, stretched (in 100 ms steps) once more than
   * `maxPerSecond × heartbeatMs / 1000` devices report. It grows at once but shrinks only after
   * five intervals at the larger value, so every agent has heard it before thresholds tighten.
   */
  intervalMs(): number {
    const now = this.clock();
    if (now - this.prunedAt > 10_000) this.prune(now);
    const wanted = Math.max(this.heartbeatMs, Math.ceil((this.seen.size * 1000) / this.maxPerSecond / 100) * 100);
    if (wanted >= this.announced) {
      if (wanted > this.announced) this.announced = wanted;
      this.announcedAt = now;
    } else if (now - this.announcedAt > 5 * this.announced) {
      this.announced = wanted;
      this.announcedAt = now;
    }
    return this.announced;
  }

  /** How much the health thresholds stretch with the announced interval (1 below the cap). */
  scale(): number {
    return this.intervalMs() / this.heartbeatMs;
  }

  private prune(now: number): void {
    this.prunedAt = now;
    for (const [id, s] of this.seen) if (now - s.seenAt > this.forgetAfterMs) this.seen.delete(id);
  }
}
