/**
 * The pass: takes the view's pending tasks in priority order and decides each (place it with the
 * Planner, preempt lower-priority work, or record why it stays pending) as a tentative booking in
 * the view, then commits the decisions of a batch in ONE store transaction. A refused commit
 * undoes its batch, refreshes the keys that moved and plans again; batches halve on conflicts and
 * grow back on success.
 */
import { NexusError } from '../errors/catalogue.js';
import type { Task } from '../resources/job.js';
import type { Compare, KeyValue, StateStore, TxnOp } from '../store/types.js';
import { allocDocOf, bookingOf, compareHolds } from './allocations.js';
import type { FilterContext } from './feasibility.js';
import { schedKeys } from './keys.js';
import { PREEMPTION_GAP, bookInto, type Planner, type Victim } from './placement.js';
import { addUsage, checkQuota, usageOf, type Usage, type UsageDoc } from './quota.js';
import { compileRequest, signatureOf } from './request.js';
import type { PassResult, ScheduleOnceOptions, SchedulerOptions } from './scheduler.js';
import { transition } from './task-state.js';
import type { AllocRec, DeviceRec, SchedulerView, TaskRec, UsageRec } from './view.js';

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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Lets in-process watch deliveries (microtasks) reach the inbox before planning. */
const drainWatches = () => new Promise<void>((r) => setImmediate(r));

function byPriority(a: TaskRec, b: TaskRec): number {
  return b.task.priority - a.task.priority || a.created - b.created || (a.task.id < b.task.id ? -1 : a.task.id > b.task.id ? 1 : 0);
}

/** Runs the passes of one Scheduler over its view; keeps the batch size across passes. */
export class PassRunner {
  private readonly store: StateStore;
  private readonly guard: () => Compare[];
  private readonly clock: () => number;
  private readonly maxBatch: number;
  /** Ops a batch may reach before it must commit (room left for one more decision's writes). */
  private opsRoom = Infinity;
  /** Ops one transaction may carry besides the guard. */
  private opsMax = Infinity;
  private batchSize: number;
  private readonly preemption: boolean;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly view: SchedulerView,
    private readonly planner: Planner,
    private readonly rng: () => number,
  ) {
    this.store = options.store;
    this.guard = options.guard ?? (() => []);
    this.clock = options.clock ?? Date.now;
    this.maxBatch = Math.max(1, options.batchSize ?? 2000);
    this.batchSize = this.maxBatch;
    this.preemption = options.preemption ?? true;
  }

  /**
   * One pass over the loaded view (the caller marks it `inPass`). `again`: work is left for
   * another pass (preemptions sent tasks back to pending, or `maxDurationMs` cut it short).
   */
  async run(options: ScheduleOnceOptions, t0: number): Promise<{ result: PassResult; again: boolean }> {
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
      this.view.applyInbox(true);
      const queue: TaskRec[] = [];
      const accept = this.options.taskFilter;
      for (const rec of this.view.pending) if (!decided.has(rec) && rec.notBefore <= now && (!accept || accept(rec.task))) queue.push(rec);
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
        this.view.applyInbox(true);
        batch = new Batch();
      }
      break;
    }
    for (const rec of decided) if (rec.task.state === 'pending') result.unplaceable++;
    result.pending = this.view.pending.size;
    result.durationMs = performance.now() - t0;
    return { result, again };
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
    const usage = this.view.usageRec(req.tenant);
    const want = usageOf(rec.task.resources);
    const quota = checkQuota(this.view.quotas.get(req.tenant)?.quotas, usage.u, want, req.tenant);
    if (quota !== undefined) {
      this.setReason(rec, quota, batch, nowIso, decided);
      return;
    }
    let reason = dead.size > 0 ? dead.get(signatureOf(req)) : undefined;
    if (reason === undefined) {
      const d = this.planner.place(req, this.view.deviceList, ctx);
      if (d.kind === 'place') {
        this.book(rec, d.device as DeviceRec, d.gpuIndices, usage, want, batch, nowIso);
        return;
      }
      reason = d.reason;
    }
    if (this.preemption && req.priority - PREEMPTION_GAP >= this.view.minHoldingPriority()) {
      const pkey = `${req.priority}|${signatureOf(req)}`;
      if (!noPreemption.has(pkey)) {
        const plan = this.planner.preempt(req, this.view.deviceList, ctx, (dev, max) => this.victimsOf(dev as DeviceRec, max, batch));
        if (plan && 2 * plan.victims.length + 3 > this.opsMax - batch.ops) {
          // Too many evictions for what this transaction can still carry (etcd's op limit):
          // leave it pending; the next pass starts with an empty batch.
          this.setReason(rec, `${reason}; preemption deferred (${plan.victims.length} evictions)`, batch, nowIso, decided);
          return;
        }
        if (plan) {
          const dev = plan.device as DeviceRec;
          for (const v of plan.victims) this.evict(this.view.tasks.get(schedKeys.task(v.tenant, v.taskId))!, dev, rec.task, batch, nowIso);
          this.book(rec, dev, plan.gpuIndices, usage, want, batch, nowIso);
          return;
        }
        noPreemption.add(pkey);
      }
    }
    dead.set(signatureOf(req), reason);
    this.setReason(rec, reason, batch, nowIso, decided);
  }

  private victimsOf(dev: DeviceRec, maxPriority: number, batch: Batch): Victim[] {
    const m = this.view.holding.get(dev.id);
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

  /** Tentatively assigns `rec` to `dev` (undone if the batch's commit fails). */
  private book(rec: TaskRec, dev: DeviceRec, gpuIndices: number[], usage: UsageRec, want: Usage, batch: Batch, nowIso: string): void {
    const prev = rec.task;
    const next = transition(prev, 'assigned', nowIso, gpuIndices.length > 0 ? { deviceId: dev.id, gpuIndices } : { deviceId: dev.id });
    const booking = bookingOf(next);
    rec.task = next;
    this.view.pending.delete(rec);
    const holding = this.view.holdingOf(dev.id);
    holding.set(rec.key, rec);
    bookInto(dev.alloc.a, booking, 1);
    addUsage(usage.u, want, 1);
    if (this.view.minHolding !== undefined && next.priority < this.view.minHolding) this.view.minHolding = next.priority;
    batch.tasks.add(rec);
    batch.allocs.add(dev.alloc);
    batch.usages.add(usage);
    batch.placements++;
    batch.undo.push(() => {
      rec.task = prev;
      this.view.pending.add(rec);
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
    const usage = this.view.usageRec(prev.tenant);
    rec.task = transition(prev, 'pending', nowIso, { preemptedBy: by.id, pendingReason: `preempted by task ${by.id} (priority ${by.priority})` });
    const holding = this.view.holdingOf(dev.id);
    holding.delete(rec.key);
    this.view.pending.add(rec);
    bookInto(dev.alloc.a, booking, -1);
    addUsage(usage.u, freed, -1);
    batch.tasks.add(rec);
    batch.allocs.add(dev.alloc);
    batch.usages.add(usage);
    batch.preempted++;
    batch.undo.push(() => {
      rec.task = prev;
      this.view.pending.delete(rec);
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
        if (kv.modRevision !== c.value) this.view.apply(kv.key, kv.value, kv.modRevision, kv.modRevision);
      } else if (c.value !== 0) {
        this.view.apply(c.key, undefined, r.revision, 0);
      }
    }
    return false;
  }

  private rollback(batch: Batch): void {
    for (let i = batch.undo.length - 1; i >= 0; i--) batch.undo[i]!();
  }
}
