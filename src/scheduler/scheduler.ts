/**
 * The Scheduler: keeps an in-memory view of devices, bookings and tasks (read from the store by
 * range, kept current by watches), takes pending tasks in priority order, places each with the
 * Planner, and commits the placements of a batch in ONE store transaction that compares the
 * modRevision of every booking document it rewrites (`/nexus/alloc/<device>`,
 * `/nexus/usage/<tenant>`), of every task it moves, and the leadership guard. Two schedulers (or
 * a deposed leader) can therefore never double-book: the loser's transaction fails, it refreshes
 * the keys that moved and plans again. See docs/adr/007-scheduler.md.
 *
 * This file: options, results and the lifecycle (load, the `start()` loop, stop). The view is in
 * view.ts, the pass and its commits in pass.ts.
 */
import type { Device } from '../resources/device.js';
import type { Task } from '../resources/job.js';
import type { Compare, StateStore } from '../store/types.js';
import type { ProfileRules } from './candidate.js';
import { PassRunner } from './pass.js';
import { Planner } from './placement.js';
import type { LocalityHook, SampleOptions, ScoreWeights } from './score.js';
import { SchedulerView } from './view.js';

export interface SchedulerOptions {
  store: StateStore;
  /**
   * Compares added to every commit; the commit fails with NEXUS_E_NOT_LEADER when they do not
   * hold. Pass `() => leadership.guard()` (src/cluster/leadership.ts). @default none
   */
  guard?: () => Compare[];
  /** Wall clock in ms (timestamps, profile time windows, retry backoff). @default Date.now */
  clock?: () => number;
  /** [0, 1) random numbers (where the candidate scan starts). @default Math.random */
  rng?: () => number;
  /** Most task writes per commit transaction. @default 2000 */
  batchSize?: number;
  /**
   * Most compares (= writes = failure reads) one transaction may carry: etcd refuses more than
   * its `--max-txn-ops`. Batches close early to stay under it. @default 128 on etcd, else no limit
   */
  maxTxnOps?: number;
  /** How many feasible devices to score per task. @default { min: 50, percentage: 0.5 } */
  sample?: SampleOptions;
  weights?: Partial<ScoreWeights>;
  /** Data-locality hook for scoring. */
  locality?: LocalityHook;
  /**
   * The profile rules of a device. By default a device naming a profile (`device.profile`) gets
   * that profile from `/nexus/profiles/<name>` (watched): its reservations, battery rule, time
   * windows (in the profile's time zone, else the server's), task limit, labels (the device's own
   * win) and tier; a device naming a missing profile gets no work (ADR 009).
   */
  profileOf?: (device: Device) => ProfileRules | undefined;
  /**
   * Only schedule tasks this accepts (Omega-style split schedulers sharing one cluster state:
   * e.g. one for GPU work, one for the rest). Bookings still see every task. @default all
   */
  taskFilter?: (task: Task) => boolean;
  /** Let high-priority tasks evict tasks ≥ 10 points lower. @default true */
  preemption?: boolean;
  /** `start()`: run a pass at least this often (time windows, backoff). @default 2000 */
  intervalMs?: number;
  /** `start()`: wait this long after a change before a pass, to gather more work. @default 5 */
  debounceMs?: number;
  /** Called after every commit attempt. */
  onBatch?: (stats: BatchStats) => void;
  /** `start()`: called with errors of a pass (the loop keeps going). */
  onError?: (err: unknown) => void;
}

/** One commit attempt. */
export interface BatchStats {
  /** Tasks assigned by this batch. */
  placements: number;
  /** Keys written. */
  writes: number;
  succeeded: boolean;
  /** Time planning the batch, ms. */
  planMs: number;
  /** Time in the store transaction, ms. */
  commitMs: number;
}

/** What one `scheduleOnce()` did. */
export interface PassResult {
  /** Tasks assigned. */
  placed: number;
  /** Tasks evicted by preemption (back to pending). */
  preempted: number;
  /** Tasks left pending because nothing fits (their pendingReason says why). */
  unplaceable: number;
  /** Commits refused because another writer moved a compared key first. */
  conflicts: number;
  /** Commit transactions that succeeded. */
  batches: number;
  /** Tasks still pending in the view after the pass. */
  pending: number;
  durationMs: number;
}

export interface ScheduleOnceOptions {
  /** Stop starting new batches after this long, ms. */
  maxDurationMs?: number;
}

/**
 * Places pending tasks on devices. One instance per server; run it under leadership.
 *
 * @example
 * const scheduler = new Scheduler({ store, guard: () => leadership.guard() });
 * await scheduler.start(signal);        // loads the view, then schedules on every change
 * // or, step by step (tests, benchmarks):
 * const pass = await scheduler.scheduleOnce();
 * await scheduler.stop();
 */
export class Scheduler {
  /** Controller name (src/cluster/controllers.ts). */
  readonly name = 'scheduler';
  private readonly options: SchedulerOptions;
  private readonly view: SchedulerView;
  private readonly passes: PassRunner;

  private loaded: Promise<void> | undefined;
  private passing: Promise<PassResult> | undefined;
  private wake: (() => void) | undefined;
  private dirty = true;
  private loop: Promise<void> | undefined;
  private stopped = false;

  constructor(options: SchedulerOptions) {
    this.options = options;
    const rng = options.rng ?? Math.random;
    const planner = new Planner({
      rng,
      ...(options.sample ? { sample: options.sample } : {}),
      ...(options.weights ? { weights: options.weights } : {}),
      ...(options.locality ? { locality: options.locality } : {}),
    });
    this.view = new SchedulerView(options, planner, { wake: () => this.wake?.(), stopped: () => this.stopped });
    this.passes = new PassRunner(options, this.view, planner, rng);
  }

  // -------------------------------------------------------------------------------------------
  // Public surface
  // -------------------------------------------------------------------------------------------

  /**
   * Reads devices, bookings, tasks, usage and tenants from the store and starts watching them.
   * Idempotent; `scheduleOnce` and `start` call it.
   */
  load(): Promise<void> {
    this.stopped = false;
    this.loaded ??= this.view.load().catch((e) => {
      this.loaded = undefined;
      throw e;
    });
    return this.loaded;
  }

  /**
   * Loads the view, then schedules in the background whenever something relevant changes (and
   * at least every `intervalMs`) until `signal` aborts or `stop()` is called. Resolves once the
   * view is loaded, so it fits `Controller.start` (src/cluster/controllers.ts).
   */
  async start(signal?: AbortSignal): Promise<void> {
    await this.load();
    if (this.loop) return;
    const onAbort = () => void this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    const interval = this.options.intervalMs ?? 2000;
    const debounce = this.options.debounceMs ?? 5;
    this.loop = (async () => {
      while (!this.stopped && !signal?.aborted) {
        if (this.passing) await this.passing.catch(() => {}); // someone called scheduleOnce()
        // Own commits come back as watch events too; applyInbox() recognises them (by revision)
        // and reports only changes made by others, so a pass never triggers itself.
        let run = this.dirty || this.view.resync || this.view.applyInbox();
        if (!run) {
          const timedOut = await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(true), interval);
            this.wake = () => {
              clearTimeout(t);
              resolve(false);
            };
          });
          this.wake = undefined;
          if (!timedOut && debounce > 0) await new Promise((r) => setTimeout(r, debounce));
          run = timedOut || this.dirty || this.view.resync || this.view.applyInbox();
        }
        if (!run || this.stopped || signal?.aborted) continue;
        this.dirty = false;
        try {
          await this.scheduleOnce();
        } catch (e) {
          if (this.stopped) break;
          this.options.onError?.(e);
          await new Promise((r) => setTimeout(r, interval));
        }
      }
      signal?.removeEventListener('abort', onAbort);
    })();
  }

  /** Stops the loop and the watches and drops the view (a later `load`/`start` reads afresh). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.view.closeWatches();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    await this.passing?.catch(() => {});
    this.loaded = undefined;
    this.view.clear();
  }

  /**
   * One scheduling pass over every pending task: place what fits, preempt where allowed, record
   * why the rest cannot run. Concurrent calls share one pass. Throws NEXUS_E_NOT_LEADER when the
   * guard no longer holds.
   */
  scheduleOnce(options: ScheduleOnceOptions = {}): Promise<PassResult> {
    this.passing ??= this.pass(options).finally(() => {
      this.passing = undefined;
    });
    return this.passing;
  }

  /** Counts in the view (for status pages and tests). */
  stats(): { devices: number; tasks: number; pending: number } {
    return { devices: this.view.deviceList.length, tasks: this.view.tasks.size, pending: this.view.pending.size };
  }

  // -------------------------------------------------------------------------------------------
  // The pass
  // -------------------------------------------------------------------------------------------

  private async pass(options: ScheduleOnceOptions): Promise<PassResult> {
    const t0 = performance.now();
    if (this.view.resync) {
      this.view.closeWatches();
      this.loaded = undefined;
    }
    await this.load();
    this.view.inPass = true;
    try {
      const { result, again } = await this.passes.run(options, t0);
      if (again) this.dirty = true;
      return result;
    } finally {
      this.view.inPass = false;
    }
  }
}
