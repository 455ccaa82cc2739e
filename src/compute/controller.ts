/**
 * The job/task controller (leader only): runs the Scheduler, retries failed tasks with backoff,
 * declares tasks on dead devices `lost` after a grace period and reschedules them, starts the
 * aggregate step once every shard succeeded, derives each job's state, and records every task
 * and job state change as an event. Level-triggered: it keeps a view of jobs, tasks and devices
 * from one store watch (from the revision it loaded at; `controller-view.ts`), reconciles the jobs
 * that changed, and every `resyncMs` all unfinished jobs, so a restart or a leader change loses
 * nothing.
 *
 * Every write is guarded by leadership (`leaderTxn`, or `updateTaskState` with the guard), and
 * every task state change goes through `updateTaskState`, which also releases bookings.
 */
import { isNexusError } from '../errors/catalogue.js';
import { DEFAULT_PRIORITY, type Task, type TaskState } from '../resources/job.js';
import { isWorkLost } from '../cluster/health.js';
import type { Controller } from '../cluster/controllers.js';
import { leaderTxn, type Leadership } from '../cluster/leadership.js';
import { updateTaskState } from '../scheduler/allocations.js';
import { schedKeys } from '../scheduler/keys.js';
import { Scheduler, type SchedulerOptions } from '../scheduler/scheduler.js';
import { taskId as taskIdOf } from '../scheduler/tasks.js';
import type { Clock, StateStore, WatchEvent } from '../store/types.js';
import { ROOT } from '../store/keys.js';
import { ComputeView } from './controller-view.js';
import { JOB_FINAL, cancelTasks } from './jobs.js';
import type { JobDoc, TaskDoc } from './types.js';

export interface ComputeControllerOptions {
  store: StateStore;
  leadership: Leadership;
  clock?: Clock;
  /** How long a device must be `down` before its tasks are declared lost. @default 120000 (as health's rescheduleGraceMs) */
  lostGraceMs?: number;
  /** Extra attempts a task gets for being lost (not its fault), on top of its retry policy. @default 5 */
  lostRetries?: number;
  /** Reconcile every unfinished job this often, whatever happened. @default 15000 */
  resyncMs?: number;
  /** Run the Scheduler as part of this controller (pass false when the server runs it itself). @default true */
  scheduler?: boolean | Partial<Omit<SchedulerOptions, 'store' | 'guard'>>;
  onError?: (err: unknown) => void;
}

const ACTIVE: ReadonlySet<TaskState> = new Set(['assigned', 'running']);

export class ComputeController implements Controller {
  readonly name = 'compute';
  private readonly store: StateStore;
  private readonly leadership: Leadership;
  private readonly clock: Clock;
  private readonly lostGraceMs: number;
  private readonly lostRetries: number;
  private readonly resyncMs: number;
  private readonly onError: (err: unknown) => void;
  readonly scheduler: Scheduler | undefined;

  private readonly view: ComputeView;
  private wakeAt = new Map<string, number>();
  private loopDone: Promise<void> | undefined;
  private kick: (() => void) | undefined;

  constructor(options: ComputeControllerOptions) {
    this.store = options.store;
    this.leadership = options.leadership;
    this.clock = options.clock ?? Date.now;
    this.lostGraceMs = options.lostGraceMs ?? 120_000;
    this.lostRetries = options.lostRetries ?? 5;
    this.resyncMs = options.resyncMs ?? 15_000;
    this.onError = options.onError ?? (() => {});
    this.view = new ComputeView(this.store, this.leadership);
    if (options.scheduler !== false) {
      const extra = typeof options.scheduler === 'object' ? options.scheduler : {};
      this.scheduler = new Scheduler({ clock: this.clock, onError: this.onError, ...extra, store: this.store, guard: () => this.leadership.guard() });
    }
  }

  private guard = () => this.leadership.guard();

  async start(signal: AbortSignal): Promise<void> {
    // A previous term's loop (leadership lost and won again) must be gone before a new one reads.
    await this.loopDone;
    if (this.scheduler) await this.scheduler.start(signal);
    this.loopDone = this.run(signal);
  }

  /** Resolves once the loop has ended (after the signal aborted). */
  async stopped(): Promise<void> {
    await this.loopDone;
    await this.scheduler?.stop();
  }

  // -------------------------------------------------------------------------------------------
  // The loop: load → watch → reconcile dirty jobs; reload on a broken watch
  // -------------------------------------------------------------------------------------------

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.session(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (isNexusError(err, 'NEXUS_E_NOT_LEADER')) break;
        this.onError(err);
        await sleep(1000, signal);
      }
    }
  }

  private async session(signal: AbortSignal): Promise<void> {
    const from = await this.view.load();
    const watch = this.store.watch(ROOT, { fromRevision: from + 1 });
    const onAbort = () => {
      watch.close();
      this.kick?.();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let broken: unknown;
    const inbox: WatchEvent[] = [];
    const pump = (async () => {
      try {
        for await (const ev of watch) {
          inbox.push(ev);
          this.kick?.();
        }
      } catch (err) {
        broken = err;
      }
      broken ??= signal.aborted ? undefined : new Error('the store watch ended');
      this.kick?.();
    })();
    let lastResync = this.clock();
    try {
      for (const id of this.view.jobs.keys()) this.view.dirty.add(id);
      while (!signal.aborted) {
        if (broken) throw broken;
        const batch = inbox.splice(0, inbox.length);
        for (const ev of batch) this.view.apply(ev);
        const now = this.clock();
        if (now - lastResync >= this.resyncMs) {
          lastResync = now;
          for (const [k, r] of this.view.jobs) if (!JOB_FINAL.has(r.doc.state) || r.doc.state === 'cancelled') this.view.dirty.add(k);
        }
        for (const [k, at] of this.wakeAt) {
          if (at <= now) {
            this.wakeAt.delete(k);
            this.view.dirty.add(k);
          }
        }
        if (this.view.dirty.size > 0) {
          const jobs = [...this.view.dirty];
          this.view.dirty.clear();
          for (const k of jobs) {
            if (signal.aborted) break;
            try {
              await this.reconcileJob(k);
            } catch (err) {
              if (isNexusError(err, 'NEXUS_E_NOT_LEADER')) throw err;
              this.onError(err);
              this.wakeAt.set(k, this.clock() + 1000);
            }
          }
        }
        await this.view.flushEvents();
        if (inbox.length > 0 || this.view.dirty.size > 0 || broken) continue;
        let wait = Math.max(0, lastResync + this.resyncMs - this.clock());
        for (const at of this.wakeAt.values()) wait = Math.min(wait, Math.max(0, at - this.clock()));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(5, wait));
          this.kick = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.kick = undefined;
        // Gather a burst of changes before reconciling.
        await sleep(5, signal);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      watch.close();
      await pump;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reconciling one job
  // -------------------------------------------------------------------------------------------

  private backoffMs(job: JobDoc, attempt: number): number {
    const base = (job.spec.retry?.backoffSeconds ?? 10) * 1000;
    return Math.min(base * 2 ** attempt, 3_600_000);
  }

  private retriesFor(job: JobDoc, t: TaskDoc): number {
    const failures = job.spec.retry?.attempts ?? 0;
    return t.state === 'lost' ? failures + this.lostRetries : failures;
  }

  private async reconcileJob(jobKey: string): Promise<void> {
    const rec = this.view.jobs.get(jobKey);
    if (!rec) return;
    const job = rec.doc;
    const now = this.clock();
    let tasks = this.view.jobTasks(jobKey);

    if (job.state === 'cancelled') {
      if (tasks.some((t) => t.state === 'pending' || ACTIVE.has(t.state))) await cancelTasks(this.store, tasks, this.clock, 'job cancelled', this.guard);
      return;
    }
    if (JOB_FINAL.has(job.state)) return;

    // 1. Work on dead devices is lost after the grace period.
    for (const t of tasks) {
      if (!ACTIVE.has(t.state) || !t.deviceId) continue;
      const dev = this.view.devices.get(t.deviceId);
      let why: string | undefined;
      if (!dev) why = `device ${t.deviceId} no longer exists`;
      else if (dev.revokedAt) why = `device ${t.deviceId} was revoked at ${dev.revokedAt}`;
      else if (isWorkLost(dev, now, this.lostGraceMs)) why = `device ${dev.name} (${dev.id}) has been down since ${dev.healthChangedAt}`;
      else if (dev.state === 'down' || dev.health === 'down') {
        const since = dev.healthChangedAt ? Date.parse(dev.healthChangedAt) : now;
        this.wake(jobKey, since + this.lostGraceMs);
      }
      if (why) {
        await this.move(t, 'lost', { message: why, failedDeviceIds: [...new Set([...(t.failedDeviceIds ?? []), t.deviceId])] } as Partial<Task>, ['assigned', 'running']);
      } else if (dev && (dev.state === 'draining' || dev.operatorState === 'draining')) {
        // `nexus device drain` moves work off: the task goes back to pending (its agent stops it)
        // and the scheduler places it elsewhere; a draining device gets no new work.
        await this.move(t, 'pending', { pendingReason: `moved off device ${dev.name} (${dev.id}), which is draining` } as Partial<Task>, ['assigned', 'running']);
      }
    }
    tasks = this.view.jobTasks(jobKey);

    // 2. Retries: failed (with backoff) and lost (at once) go back to pending while attempts remain.
    let doomed: TaskDoc | undefined;
    for (const t of tasks) {
      if (t.state !== 'failed' && t.state !== 'lost') {
        if (t.state === 'cancelled') doomed ??= t;
        continue;
      }
      const allowed = this.retriesFor(job, t);
      if (t.attempt >= allowed) {
        doomed ??= t;
        continue;
      }
      const notBefore = t.state === 'failed' ? (t.finishedAt ? Date.parse(t.finishedAt) : now) + this.backoffMs(job, t.attempt) : now;
      const reason = t.state === 'failed'
        ? `retry ${t.attempt + 1} of ${allowed} after attempt ${t.attempt} failed${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ''}; not before ${new Date(notBefore).toISOString()}`
        : `rescheduling after attempt ${t.attempt} was lost${t.message ? ` (${t.message})` : ''}`;
      await this.move(t, 'pending', {
        ...(notBefore > now ? { notBefore: new Date(notBefore).toISOString() } : {}),
        pendingReason: reason,
      } as Partial<Task>, [t.state]);
      if (notBefore > now) this.wake(jobKey, notBefore);
    }
    tasks = this.view.jobTasks(jobKey);

    // 3. Shards the API did not get to write (a crash between batches) are added.
    const count = job.spec.count ?? 1;
    const shards = tasks.filter((t) => t.shardIndex >= 0);
    if (shards.length < count && now - Date.parse(job.createdAt) > 10_000) await this.addMissingShards(job, new Set(shards.map((t) => t.shardIndex)));

    // 4. A job with a task that failed for good: tasks that have not started are cancelled (the
    //    job cannot succeed); the job fails once nothing runs any more.
    if (doomed) {
      if (tasks.some((t) => t.state === 'pending')) await cancelTasks(this.store, tasks.filter((t) => t.state === 'pending'), this.clock, `job failed: task ${doomed.id} ${doomed.state}`, this.guard);
      tasks = this.view.jobTasks(jobKey);
      if (!tasks.some((t) => ACTIVE.has(t.state) || t.state === 'pending')) {
        const n = doomed.attempt + 1;
        const what = doomed.state === 'cancelled' ? 'was cancelled' : `${doomed.state === 'lost' ? 'was lost' : 'failed'} after ${n} attempt${n === 1 ? '' : 's'}`;
        const why = doomed.message ?? (doomed.exitCode !== undefined ? `exit code ${doomed.exitCode}` : undefined);
        await this.setJobState(jobKey, 'failed', `task ${doomed.id} ${what}${why ? `: ${why}` : ''}`);
      } else await this.setJobState(jobKey, 'running');
      return;
    }

    // 5. Every shard succeeded: the aggregate step (if any), then success.
    const shardsDone = shards.length >= count && shards.every((t) => t.state === 'succeeded');
    if (shardsDone) {
      if (job.spec.aggregate) {
        const agg = tasks.find((t) => t.shardIndex < 0);
        if (!agg) {
          await this.createAggregate(job);
          await this.setJobState(jobKey, 'running');
          return;
        }
        if (agg.state !== 'succeeded') {
          await this.setJobState(jobKey, 'running');
          return;
        }
      }
      await this.setJobState(jobKey, 'succeeded');
      return;
    }

    // 6. Otherwise: pending until something started, then running.
    const started = tasks.some((t) => t.state !== 'pending' || t.attempt > 0);
    await this.setJobState(jobKey, started ? 'running' : 'pending');
  }

  private wake(jobKey: string, at: number): void {
    const prev = this.wakeAt.get(jobKey);
    if (prev === undefined || at < prev) this.wakeAt.set(jobKey, at);
  }

  /** One guarded task move; a task that moved meanwhile is left to the next reconcile. */
  private async move(t: TaskDoc, to: TaskState, fields: Partial<Task>, from: TaskState[]): Promise<void> {
    try {
      await updateTaskState(this.store, t.tenant, t.id, to, { at: this.clock(), from, fields, guard: this.guard });
    } catch (err) {
      if (isNexusError(err, 'NEXUS_E_CONFLICT') || isNexusError(err, 'NEXUS_E_NOT_FOUND')) return;
      throw err;
    }
  }

  private async setJobState(jobKey: string, state: JobDoc['state'], message?: string): Promise<void> {
    const rec = this.view.jobs.get(jobKey);
    if (!rec || (rec.doc.state === state && rec.doc.message === (message ?? rec.doc.message))) return;
    const next: JobDoc = { ...rec.doc, state, updatedAt: new Date(this.clock()).toISOString() };
    if (message) next.message = message;
    // The view is updated (and the event recorded) when the watch brings the write back; on a
    // lost race it brings the newer document and the job is reconciled again.
    await leaderTxn(this.store, this.leadership, {
      compare: [{ key: jobKey, target: 'modRevision', op: '=', value: rec.rev }],
      success: [{ type: 'put', key: jobKey, value: JSON.stringify(next) }],
    });
  }

  private baseTask(job: JobDoc, shardIndex: number): Task {
    const s = job.spec;
    const placement = {
      ...(s.constraints ? { constraints: s.constraints } : {}),
      ...(s.affinities ? { affinities: s.affinities } : {}),
      ...(s.spread ? { spread: true } : {}),
    };
    return {
      id: taskIdOf(job.id, shardIndex),
      jobId: job.id,
      tenant: job.tenant,
      shardIndex,
      attempt: 0,
      state: 'pending',
      priority: s.priority ?? DEFAULT_PRIORITY,
      resources: shardIndex < 0 ? s.aggregate?.resources ?? s.resources : s.resources,
      ...(Object.keys(placement).length > 0 ? { placement } : {}),
      createdAt: new Date(this.clock()).toISOString(),
    };
  }

  private async createIfAbsent(tasks: Task[]): Promise<void> {
    for (let i = 0; i < tasks.length; i += 60) {
      const batch = tasks.slice(i, i + 60);
      const puts = batch.map((t) => ({ type: 'put' as const, key: schedKeys.task(t.tenant, t.id), value: JSON.stringify(t) }));
      const r = await leaderTxn(this.store, this.leadership, {
        compare: puts.map((p) => ({ key: p.key, target: 'version' as const, op: '=' as const, value: 0 })),
        success: puts,
      });
      if (!r.succeeded) {
        for (const p of puts) await leaderTxn(this.store, this.leadership, { compare: [{ key: p.key, target: 'version', op: '=', value: 0 }], success: [p] });
      }
    }
  }

  private async createAggregate(job: JobDoc): Promise<void> {
    await this.createIfAbsent([this.baseTask(job, -1)]);
  }

  private async addMissingShards(job: JobDoc, have: Set<number>): Promise<void> {
    const missing: Task[] = [];
    for (let i = 0; i < (job.spec.count ?? 1); i++) if (!have.has(i)) missing.push(this.baseTask(job, i));
    await this.createIfAbsent(missing);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

