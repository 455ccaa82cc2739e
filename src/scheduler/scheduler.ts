/**
 * The Scheduler: keeps an in-memory view of devices, bookings and tasks (read from the store by
 * range, kept current by watches), takes pending tasks in priority order, places each with the
 * Planner, and commits the placements of a batch in ONE store transaction that compares the
 * modRevision of every booking document it rewrites (`/nexus/alloc/<device>`,
 * `/nexus/usage/<tenant>`), of every task it moves, and the leadership guard. Two schedulers (or
 * a deposed leader) can therefore never double-book: the loser's transaction fails, it refreshes
 * the keys that moved and plans again. See docs/adr/007-scheduler.md.
 */
import { NexusError } from '../errors/catalogue.js';
import type { Device } from '../resources/device.js';
import type { Task } from '../resources/job.js';
import type { Profile } from '../resources/profile.js';
import type { Quotas, Tenant } from '../resources/tenant.js';
import { keys } from '../store/keys.js';
import type { Compare, KeyValue, StateStore, TxnOp, Watch, WatchEvent } from '../store/types.js';
import { allocDocOf, allocatedFromDoc, bookingOf, compareHolds, emptyAllocated, type AllocDoc } from './allocations.js';
import { compileRequest, signatureOf, toCandidate, type Allocated, type CandidateDevice, type FilterContext, type ProfileRules, type TaskRequest } from './feasibility.js';
import { schedKeys } from './keys.js';
import { PREEMPTION_GAP, Planner, bookInto, type Victim } from './placement.js';
import { ZERO_USAGE, addUsage, checkQuota, usageOf, type Usage, type UsageDoc } from './quota.js';
import type { LocalityHook, SampleOptions, ScoreWeights } from './score.js';
import { HOLDS_RESOURCES, transition } from './task-state.js';

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

interface Versioned {
  key: string;
  /** modRevision of the key in the store as we know it (0 = absent): what commits compare. */
  rev: number;
  /** Highest store revision applied to this record (older events are ignored). */
  seen: number;
}

interface TaskRec extends Versioned {
  task: Task;
  req: TaskRequest | undefined;
  created: number;
  notBefore: number;
}

interface AllocRec extends Versioned {
  deviceId: string;
  a: Allocated;
}

interface UsageRec extends Versioned {
  tenant: string;
  u: Usage;
}

interface DeviceRec extends CandidateDevice {
  seen: number;
  /** The device document as stored (re-derived when its profile changes). */
  doc: Device;
  alloc: AllocRec;
  pos: number;
}

class Batch {
  readonly tasks = new Set<TaskRec>();
  readonly allocs = new Set<AllocRec>();
  readonly usages = new Set<UsageRec>();
  readonly undo: (() => void)[] = [];
  placements = 0;
  preempted = 0;
  readonly started = performance.now();
  get size(): number {
    return this.tasks.size;
  }
  /** Keys compared (and written) by the commit, guard excluded. */
  get ops(): number {
    return this.tasks.size + this.allocs.size + this.usages.size;
  }
}

const PREFIX = {
  devices: keys.devices(),
  tasks: schedKeys.tasks(),
  allocs: schedKeys.allocs(),
  usages: schedKeys.usages(),
  tenants: keys.tenants(),
  profiles: schedKeys.profiles(),
};
// Profiles before devices, so a loaded device finds its profile.
const WATCHED = [PREFIX.profiles, PREFIX.devices, PREFIX.tasks, PREFIX.allocs, PREFIX.usages, PREFIX.tenants];

/** The server's own time zone: windows of a profile without `timeZone` are read in it (ADR 009). */
const LOCAL_TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

type DeviceDoc = Device & { profile?: unknown; utilization?: { battery?: { onBattery?: boolean } } };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Lets in-process watch deliveries (microtasks) reach the inbox before planning. */
const drainWatches = () => new Promise<void>((r) => setImmediate(r));

function byPriority(a: TaskRec, b: TaskRec): number {
  return b.task.priority - a.task.priority || a.created - b.created || (a.task.id < b.task.id ? -1 : a.task.id > b.task.id ? 1 : 0);
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
  private readonly store: StateStore;
  private readonly guard: () => Compare[];
  private readonly clock: () => number;
  private readonly rng: () => number;
  private readonly planner: Planner;
  private readonly maxBatch: number;
  /** Ops a batch may reach before it must commit (room left for one more decision's writes). */
  private opsRoom = Infinity;
  /** Ops one transaction may carry besides the guard. */
  private opsMax = Infinity;
  private batchSize: number;
  private readonly preemption: boolean;
  private readonly options: SchedulerOptions;

  // The view.
  private readonly tasks = new Map<string, TaskRec>();
  private readonly pending = new Set<TaskRec>();
  private readonly holding = new Map<string, Map<string, TaskRec>>();
  private readonly devices = new Map<string, DeviceRec>();
  private readonly deviceList: DeviceRec[] = [];
  private readonly allocs = new Map<string, AllocRec>();
  private readonly usages = new Map<string, UsageRec>();
  private readonly quotas = new Map<string, { quotas: Quotas; seen: number }>();
  private readonly profiles = new Map<string, { profile: Profile; seen: number }>();

  private loaded: Promise<void> | undefined;
  private watches: Watch[] = [];
  private inbox: WatchEvent[] = [];
  private resync = false;
  private passing: Promise<PassResult> | undefined;
  private wake: (() => void) | undefined;
  private dirty = true;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private inPass = false;
  /** Cache of minHoldingPriority(); reset whenever the view changes outside a pass's own bookings. */
  private minHolding: number | undefined;

  constructor(options: SchedulerOptions) {
    this.options = options;
    this.store = options.store;
    this.guard = options.guard ?? (() => []);
    this.clock = options.clock ?? Date.now;
    this.rng = options.rng ?? Math.random;
    this.maxBatch = Math.max(1, options.batchSize ?? 2000);
    this.batchSize = this.maxBatch;
    this.preemption = options.preemption ?? true;
    this.planner = new Planner({
      rng: this.rng,
      ...(options.sample ? { sample: options.sample } : {}),
      ...(options.weights ? { weights: options.weights } : {}),
      ...(options.locality ? { locality: options.locality } : {}),
    });
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
    this.loaded ??= this.doLoad().catch((e) => {
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
        let run = this.dirty || this.resync || this.applyInbox();
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
          run = timedOut || this.dirty || this.resync || this.applyInbox();
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
    for (const w of this.watches) w.close();
    this.watches = [];
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    await this.passing?.catch(() => {});
    this.loaded = undefined;
    this.clearView();
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
    return { devices: this.deviceList.length, tasks: this.tasks.size, pending: this.pending.size };
  }

  // -------------------------------------------------------------------------------------------
  // The view: load, watch, apply
  // -------------------------------------------------------------------------------------------

  private clearView(): void {
    this.tasks.clear();
    this.pending.clear();
    this.holding.clear();
    this.devices.clear();
    this.deviceList.length = 0;
    this.allocs.clear();
    this.usages.clear();
    this.quotas.clear();
    this.profiles.clear();
    this.inbox = [];
    this.planner.scoreCtx.maxSpeedScore = 0;
  }

  private async doLoad(): Promise<void> {
    this.clearView();
    this.resync = false;
    const from = (await this.store.revision()) + 1;
    for (const prefix of WATCHED) {
      let after: string | undefined;
      do {
        const page = await this.store.range(prefix, { limit: 5000, ...(after ? { after } : {}) });
        for (const kv of page.items) this.apply(kv.key, kv.value, kv.modRevision, kv.modRevision);
        after = page.next;
      } while (after);
    }
    for (const prefix of WATCHED) {
      const w = this.store.watch(prefix, { fromRevision: from });
      this.watches.push(w);
      void (async () => {
        try {
          for await (const ev of w) {
            this.inbox.push(ev);
            this.wake?.();
          }
        } catch {
          // Compacted or broken watch: read everything again before the next pass.
          if (!this.stopped) {
            this.resync = true;
            this.wake?.();
          }
        }
      })();
    }
  }

  /**
   * Applies watched events; true when any changed the view. Never while a pass runs (unless the
   * pass itself asks, between batches): an event must not land on a batch's tentative bookings.
   */
  private applyInbox(fromPass = false): boolean {
    if (this.inbox.length === 0 || (this.inPass && !fromPass)) return false;
    const events = this.inbox;
    this.inbox = [];
    let changed = false;
    for (const ev of events) {
      const put = ev.type === 'put';
      if (this.apply(ev.key, put ? ev.value : undefined, ev.revision, put ? ev.revision : 0)) changed = true;
    }
    return changed;
  }

  /** Applies one key's state at store revision `seen` (value undefined = deleted); false if stale. */
  private apply(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    if (key.startsWith(PREFIX.tasks)) return this.applyTask(key, value, seen, modRevision);
    if (key.startsWith(PREFIX.allocs)) return this.applyAlloc(key, value, seen, modRevision);
    if (key.startsWith(PREFIX.devices)) return this.applyDevice(key, value, seen);
    if (key.startsWith(PREFIX.usages)) return this.applyUsage(key, value, seen, modRevision);
    if (key.startsWith(PREFIX.tenants)) return this.applyTenant(key, value, seen);
    if (key.startsWith(PREFIX.profiles)) return this.applyProfile(key, value, seen);
    return false;
  }

  private index(rec: TaskRec): void {
    const t = rec.task;
    this.minHolding = undefined;
    if (t.state === 'pending') this.pending.add(rec);
    else if (HOLDS_RESOURCES.has(t.state) && t.deviceId) {
      let m = this.holding.get(t.deviceId);
      if (!m) this.holding.set(t.deviceId, (m = new Map()));
      m.set(rec.key, rec);
    }
  }

  private unindex(rec: TaskRec): void {
    const t = rec.task;
    if (t.state === 'pending') this.pending.delete(rec);
    else if (t.deviceId) this.holding.get(t.deviceId)?.delete(rec.key);
  }

  private applyTask(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    const rec = this.tasks.get(key);
    if (rec && rec.seen >= seen) return false;
    if (value === undefined) {
      if (!rec) return false;
      this.unindex(rec);
      this.tasks.delete(key);
      return true;
    }
    const task = JSON.parse(value) as Task;
    const created = Date.parse(task.createdAt);
    const notBefore = task.notBefore ? Date.parse(task.notBefore) : 0;
    if (rec) {
      this.unindex(rec);
      rec.task = task;
      rec.req = undefined;
      rec.rev = modRevision;
      rec.seen = seen;
      rec.created = created;
      rec.notBefore = notBefore;
      this.index(rec);
    } else {
      const r: TaskRec = { key, rev: modRevision, seen, task, req: undefined, created, notBefore };
      this.tasks.set(key, r);
      this.index(r);
    }
    return true;
  }

  private allocRec(deviceId: string): AllocRec {
    let a = this.allocs.get(deviceId);
    if (!a) {
      a = { key: schedKeys.alloc(deviceId), rev: 0, seen: 0, deviceId, a: emptyAllocated() };
      this.allocs.set(deviceId, a);
    }
    return a;
  }

  private applyAlloc(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    const rec = this.allocRec(key.slice(PREFIX.allocs.length));
    if (rec.seen >= seen) return false;
    allocatedFromDoc(value === undefined ? undefined : (JSON.parse(value) as AllocDoc), rec.a);
    rec.rev = modRevision;
    rec.seen = seen;
    return true;
  }

  private usageRec(tenant: string): UsageRec {
    let u = this.usages.get(tenant);
    if (!u) {
      u = { key: schedKeys.usage(tenant), rev: 0, seen: 0, tenant, u: { ...ZERO_USAGE } };
      this.usages.set(tenant, u);
    }
    return u;
  }

  private applyUsage(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    const rec = this.usageRec(key.slice(PREFIX.usages.length));
    if (rec.seen >= seen) return false;
    const doc = value === undefined ? undefined : (JSON.parse(value) as UsageDoc);
    rec.u = { cpuMillis: doc?.cpuMillis ?? 0, memoryBytes: doc?.memoryBytes ?? 0, gpus: doc?.gpus ?? 0, tasks: doc?.tasks ?? 0 };
    rec.rev = modRevision;
    rec.seen = seen;
    return true;
  }

  private applyTenant(key: string, value: string | undefined, seen: number): boolean {
    const name = key.slice(PREFIX.tenants.length);
    const prev = this.quotas.get(name);
    if (prev && prev.seen >= seen) return false;
    if (value === undefined) this.quotas.delete(name);
    else this.quotas.set(name, { quotas: (JSON.parse(value) as Tenant).quotas ?? {}, seen });
    return true;
  }

  private applyDevice(key: string, value: string | undefined, seen: number): boolean {
    const id = key.slice(PREFIX.devices.length);
    const rec = this.devices.get(id);
    if (rec && rec.seen >= seen) return false;
    if (value === undefined) {
      if (!rec) return false;
      const last = this.deviceList.pop()!;
      if (last !== rec) {
        this.deviceList[rec.pos] = last;
        last.pos = rec.pos;
      }
      this.devices.delete(id);
      this.planner.devicesChanged();
      return true;
    }
    const d = JSON.parse(value) as DeviceDoc;
    const view = this.candidateOf(d);
    const speed = view.capabilities.cpu.speedScore ?? 0;
    if (speed > this.planner.scoreCtx.maxSpeedScore) this.planner.scoreCtx.maxSpeedScore = speed;
    if (rec) {
      const { allocated: _a, ...fields } = view;
      Object.assign(rec, fields);
      rec.seen = seen;
      rec.doc = d;
    } else {
      const alloc = this.allocRec(id);
      const r = Object.assign(view, { seen, doc: d, alloc, pos: this.deviceList.length, allocated: alloc.a }) as DeviceRec;
      this.devices.set(id, r);
      this.deviceList.push(r);
    }
    this.planner.devicesChanged();
    return true;
  }

  /** The candidate view of a device document, with its profile applied. */
  private candidateOf(d: DeviceDoc): CandidateDevice {
    let profile: ProfileRules | undefined;
    let doc: Device = d;
    if (this.options.profileOf) {
      profile = this.options.profileOf(d);
    } else if (typeof d.profile === 'string' && d.profile !== '') {
      const p = this.profiles.get(d.profile)?.profile;
      if (!p) {
        profile = { missing: true };
      } else {
        profile = {
          reservedCpuMillis: p.reservedCpuMillis ?? 0,
          reservedMemoryBytes: p.reservedMemoryBytes ?? 0,
          notOnBattery: p.notOnBattery === true,
          windows: p.windows ?? [],
          timeZone: p.timeZone ?? LOCAL_TIME_ZONE,
          ...(p.maxTasks !== undefined ? { maxTasks: p.maxTasks } : {}),
        };
        doc = { ...d, labels: { ...p.labels, ...d.labels }, tier: p.tier ?? d.tier };
      }
    } else if (d.profile && typeof d.profile === 'object') {
      profile = d.profile as ProfileRules; // rules embedded in the document (simulations, tests)
    }
    const view = toCandidate(doc, undefined as unknown as Allocated, profile);
    // The live battery state from the last heartbeat wins over the probed one.
    const live = d.utilization?.battery?.onBattery;
    if (typeof live === 'boolean') view.power = { onBattery: live };
    return view;
  }

  private applyProfile(key: string, value: string | undefined, seen: number): boolean {
    const name = key.slice(PREFIX.profiles.length);
    const prev = this.profiles.get(name);
    if (prev && prev.seen >= seen) return false;
    if (value === undefined) this.profiles.delete(name);
    else this.profiles.set(name, { profile: JSON.parse(value) as Profile, seen });
    // Re-derive the devices that name it.
    for (const rec of this.deviceList) {
      if ((rec.doc as DeviceDoc).profile !== name) continue;
      const { allocated: _a, ...fields } = this.candidateOf(rec.doc as DeviceDoc);
      Object.assign(rec, fields);
    }
    this.planner.devicesChanged();
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // The pass
  // -------------------------------------------------------------------------------------------

  private async pass(options: ScheduleOnceOptions): Promise<PassResult> {
    const t0 = performance.now();
    if (this.resync) {
      for (const w of this.watches) w.close();
      this.watches = [];
      this.loaded = undefined;
    }
    await this.load();
    this.inPass = true;
    try {
      return await this.passBody(options, t0);
    } finally {
      this.inPass = false;
    }
  }

  private async passBody(options: ScheduleOnceOptions, t0: number): Promise<PassResult> {
    const maxOps = this.options.maxTxnOps ?? (this.store.engine === 'etcd' ? 128 : Infinity);
    // One more decision may add a task, its device and tenant, and up to a few victims with theirs.
    this.opsMax = maxOps - this.guard().length;
    this.opsRoom = this.opsMax - 24;
    if (this.opsRoom < 1) throw new NexusError('NEXUS_E_CONFIG', { field: 'maxTxnOps', detail: `${maxOps} leaves no room for a placement` });
    const deadline = options.maxDurationMs !== undefined ? t0 + options.maxDurationMs : Infinity;
    const result: PassResult = { placed: 0, preempted: 0, unplaceable: 0, conflicts: 0, batches: 0, pending: 0, durationMs: 0 };
    const now = this.clock();
    const nowIso = new Date(now).toISOString();
    const ctx: FilterContext = { now };
    let deadSignatures = new Map<string, string>();
    const noPreemption = new Set<string>();
    const decided = new Set<TaskRec>();
    let again = false;

    rounds: for (let round = 0; round < 50; round++) {
      if (round > 0) await sleep(this.rng() * 2 * Math.min(round, 5)); // jitter after a conflict
      await drainWatches();
      this.applyInbox(true);
      const queue: TaskRec[] = [];
      const accept = this.options.taskFilter;
      for (const rec of this.pending) if (!decided.has(rec) && rec.notBefore <= now && (!accept || accept(rec.task))) queue.push(rec);
      queue.sort(byPriority);
      let batch = new Batch();
      for (let i = 0; i <= queue.length; i++) {
        const rec = queue[i];
        if (rec !== undefined) {
          if (rec.task.state !== 'pending' || decided.has(rec)) continue;
          this.decide(rec, batch, ctx, nowIso, deadSignatures, noPreemption, decided);
          if (batch.size < this.batchSize && batch.ops < this.opsRoom) continue;
        }
        if (batch.size === 0) break;
        const ok = await this.commit(batch, result);
        if (!ok) {
          deadSignatures = new Map();
          continue rounds;
        }
        if (batch.preempted > 0) again = true;
        if (rec === undefined) break;
        if (performance.now() >= deadline) {
          again = true;
          break rounds;
        }
        // Let other writers' watch events arrive, so the next batch plans on current state.
        await drainWatches();
        this.applyInbox(true);
        batch = new Batch();
      }
      break;
    }
    if (again) this.dirty = true;
    for (const rec of decided) if (rec.task.state === 'pending') result.unplaceable++;
    result.pending = this.pending.size;
    result.durationMs = performance.now() - t0;
    return result;
  }

  private decide(
    rec: TaskRec,
    batch: Batch,
    ctx: FilterContext,
    nowIso: string,
    dead: Map<string, string>,
    noPreemption: Set<string>,
    decided: Set<TaskRec>,
  ): void {
    const req = (rec.req ??= compileRequest(rec.task));
    const usage = this.usageRec(req.tenant);
    const want = usageOf(rec.task.resources);
    const quota = checkQuota(this.quotas.get(req.tenant)?.quotas, usage.u, want, req.tenant);
    if (quota !== undefined) {
      this.setReason(rec, quota, batch, nowIso, decided);
      return;
    }
    let reason = dead.size > 0 ? dead.get(signatureOf(req)) : undefined;
    if (reason === undefined) {
      const d = this.planner.place(req, this.deviceList, ctx);
      if (d.kind === 'place') {
        this.book(rec, d.device as DeviceRec, d.gpuIndices, usage, want, batch, nowIso);
        return;
      }
      reason = d.reason;
    }
    if (this.preemption && req.priority - PREEMPTION_GAP >= this.minHoldingPriority()) {
      const pkey = `${req.priority}|${signatureOf(req)}`;
      if (!noPreemption.has(pkey)) {
        const plan = this.planner.preempt(req, this.deviceList, ctx, (dev, max) => this.victimsOf(dev as DeviceRec, max, batch));
        if (plan && 2 * plan.victims.length + 3 > this.opsMax - batch.ops) {
          // Too many evictions for what this transaction can still carry (etcd's op limit):
          // leave it pending; the next pass starts with an empty batch.
          this.setReason(rec, `${reason}; preemption deferred (${plan.victims.length} evictions)`, batch, nowIso, decided);
          return;
        }
        if (plan) {
          const dev = plan.device as DeviceRec;
          for (const v of plan.victims) this.evict(this.tasks.get(schedKeys.task(v.tenant, v.taskId))!, dev, rec.task, batch, nowIso);
          this.book(rec, dev, plan.gpuIndices, usage, want, batch, nowIso);
          return;
        }
        noPreemption.add(pkey);
      }
    }
    dead.set(signatureOf(req), reason);
    this.setReason(rec, reason, batch, nowIso, decided);
  }

  /** The lowest priority of any task holding resources (101 when none): preemption is pointless below it + 10. */
  private minHoldingPriority(): number {
    if (this.minHolding === undefined) {
      let min = 101;
      for (const m of this.holding.values()) for (const rec of m.values()) if (rec.task.priority < min) min = rec.task.priority;
      this.minHolding = min;
    }
    return this.minHolding;
  }

  private victimsOf(dev: DeviceRec, maxPriority: number, batch: Batch): Victim[] {
    const m = this.holding.get(dev.id);
    if (!m) return [];
    const out: Victim[] = [];
    for (const rec of m.values()) {
      const t = rec.task;
      if (t.priority > maxPriority || batch.tasks.has(rec)) continue; // batch: booked now, not committed yet
      out.push({
        taskId: t.id,
        tenant: t.tenant,
        priority: t.priority,
        cpuMillis: t.resources.cpuMillis,
        memoryBytes: t.resources.memoryBytes,
        gpuIndices: t.gpuIndices ?? [],
        ...(t.resources.accelerators ? { accelerators: t.resources.accelerators } : {}),
      });
    }
    return out;
  }

  private holdingOf(deviceId: string): Map<string, TaskRec> {
    let m = this.holding.get(deviceId);
    if (!m) this.holding.set(deviceId, (m = new Map()));
    return m;
  }

  /** Tentatively assigns `rec` to `dev` (undone if the batch's commit fails). */
  private book(rec: TaskRec, dev: DeviceRec, gpuIndices: number[], usage: UsageRec, want: Usage, batch: Batch, nowIso: string): void {
    const prev = rec.task;
    const next = transition(prev, 'assigned', nowIso, gpuIndices.length > 0 ? { deviceId: dev.id, gpuIndices } : { deviceId: dev.id });
    const booking = bookingOf(next);
    rec.task = next;
    this.pending.delete(rec);
    const holding = this.holdingOf(dev.id);
    holding.set(rec.key, rec);
    bookInto(dev.alloc.a, booking, 1);
    addUsage(usage.u, want, 1);
    if (this.minHolding !== undefined && next.priority < this.minHolding) this.minHolding = next.priority;
    batch.tasks.add(rec);
    batch.allocs.add(dev.alloc);
    batch.usages.add(usage);
    batch.placements++;
    batch.undo.push(() => {
      rec.task = prev;
      this.pending.add(rec);
      holding.delete(rec.key);
      bookInto(dev.alloc.a, booking, -1);
      addUsage(usage.u, want, -1);
    });
  }

  /** Tentatively sends a booked task back to pending to make room for `by`. */
  private evict(rec: TaskRec, dev: DeviceRec, by: Task, batch: Batch, nowIso: string): void {
    const prev = rec.task;
    const booking = bookingOf(prev);
    const freed = usageOf(prev.resources);
    const usage = this.usageRec(prev.tenant);
    rec.task = transition(prev, 'pending', nowIso, { preemptedBy: by.id, pendingReason: `preempted by task ${by.id} (priority ${by.priority})` });
    const holding = this.holdingOf(dev.id);
    holding.delete(rec.key);
    this.pending.add(rec);
    bookInto(dev.alloc.a, booking, -1);
    addUsage(usage.u, freed, -1);
    batch.tasks.add(rec);
    batch.allocs.add(dev.alloc);
    batch.usages.add(usage);
    batch.preempted++;
    batch.undo.push(() => {
      rec.task = prev;
      this.pending.delete(rec);
      holding.set(rec.key, rec);
      bookInto(dev.alloc.a, booking, 1);
      addUsage(usage.u, freed, 1);
    });
  }

  /** Records why a task stays pending (written only when the reason changes). */
  private setReason(rec: TaskRec, reason: string, batch: Batch, nowIso: string, decided: Set<TaskRec>): void {
    decided.add(rec);
    batch.undo.push(() => decided.delete(rec));
    if (rec.task.pendingReason === reason) return;
    const prev = rec.task;
    const next: Task = Object.assign({}, prev);
    next.pendingReason = reason;
    next.updatedAt = nowIso;
    rec.task = next;
    batch.tasks.add(rec);
    batch.undo.push(() => {
      rec.task = prev;
    });
  }

  /** Commits a batch in one transaction; on conflict undoes it, refreshes what moved, returns false. */
  private async commit(batch: Batch, result: PassResult): Promise<boolean> {
    const guard = this.guard();
    const compare: Compare[] = guard.slice();
    const success: TxnOp[] = [];
    for (const rec of batch.tasks) {
      compare.push({ key: rec.key, target: 'modRevision', op: '=', value: rec.rev });
      success.push({ type: 'put', key: rec.key, value: JSON.stringify(rec.task) });
    }
    for (const rec of batch.allocs) {
      compare.push({ key: rec.key, target: 'modRevision', op: '=', value: rec.rev });
      success.push({ type: 'put', key: rec.key, value: JSON.stringify(allocDocOf(rec.deviceId, rec.a)) });
    }
    for (const rec of batch.usages) {
      compare.push({ key: rec.key, target: 'modRevision', op: '=', value: rec.rev });
      const doc: UsageDoc = { tenant: rec.tenant, ...rec.u };
      success.push({ type: 'put', key: rec.key, value: JSON.stringify(doc) });
    }
    const failure: TxnOp[] = compare.map((c) => ({ type: 'get', key: c.key }));
    const t1 = performance.now();
    let r;
    try {
      r = await this.store.txn({ compare, success, failure });
    } catch (e) {
      this.rollback(batch);
      throw e;
    }
    const t2 = performance.now();
    this.options.onBatch?.({ placements: batch.placements, writes: success.length, succeeded: r.succeeded, planMs: t1 - batch.started, commitMs: t2 - t1 });
    if (r.succeeded) {
      const rev = r.revision;
      for (const rec of batch.tasks) rec.rev = rec.seen = rev;
      for (const rec of batch.allocs) rec.rev = rec.seen = rev;
      for (const rec of batch.usages) rec.rev = rec.seen = rev;
      result.placed += batch.placements;
      result.preempted += batch.preempted;
      result.batches++;
      if (this.batchSize < this.maxBatch) this.batchSize = Math.min(this.maxBatch, this.batchSize * 2);
      return true;
    }
    this.rollback(batch);
    result.conflicts++;
    this.batchSize = Math.max(8, Math.floor(this.batchSize / 2));
    for (let i = 0; i < guard.length; i++) {
      const kv = (r.results[i] as { kv?: KeyValue }).kv;
      if (!compareHolds(kv, guard[i]!)) throw new NexusError('NEXUS_E_NOT_LEADER');
    }
    for (let i = guard.length; i < compare.length; i++) {
      const c = compare[i]!;
      const kv = (r.results[i] as { kv?: KeyValue }).kv;
      if (kv) {
        if (kv.modRevision !== c.value) this.apply(kv.key, kv.value, kv.modRevision, kv.modRevision);
      } else if (c.value !== 0) {
        this.apply(c.key, undefined, r.revision, 0);
      }
    }
    return false;
  }

  private rollback(batch: Batch): void {
    for (let i = batch.undo.length - 1; i >= 0; i--) batch.undo[i]!();
  }
}

