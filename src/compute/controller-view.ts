/**
 * The compute controller's view of the store: jobs, tasks (indexed by job) and devices, loaded at
 * one revision and kept current from the controller's watch, with the jobs that changed marked
 * dirty. Every task and job state change it sees is recorded as an event; events are written in
 * guarded batches with a cursor, so a restart or a new leader records what happened in between.
 */
import type { Device } from '../resources/device.js';
import type { Task } from '../resources/job.js';
import { leaderTxn, type Leadership } from '../cluster/leadership.js';
import { schedKeys } from '../scheduler/keys.js';
import { HOLDS_RESOURCES } from '../scheduler/task-state.js';
import { keys } from '../store/keys.js';
import type { KeyValue, StateStore, TxnOp, WatchEvent } from '../store/types.js';
import { rangeAll } from './jobs.js';
import { computeKeys } from './keys.js';
import type { ComputeEvent, JobDoc, TaskDoc } from './types.js';

export interface Rec<T> {
  doc: T;
  rev: number;
}

const WATCH_PREFIXES = { jobs: schedKeys.jobs(), tasks: schedKeys.tasks(), devices: keys.devices() };

export class ComputeView {
  readonly jobs = new Map<string, Rec<JobDoc>>();
  private readonly tasks = new Map<string, Rec<TaskDoc>>();
  private readonly tasksByJob = new Map<string, Set<string>>();
  readonly devices = new Map<string, Device>();
  /** Jobs (by key) to reconcile. */
  readonly dirty = new Set<string>();
  private pendingEvents: { key: string; event: ComputeEvent }[] = [];
  private processedRev = 0;

  constructor(
    private readonly store: StateStore,
    private readonly leadership: Leadership,
  ) {}

  /** Reads jobs, tasks and devices; returns the revision the view is at. */
  async load(): Promise<number> {
    this.jobs.clear();
    this.tasks.clear();
    this.tasksByJob.clear();
    this.devices.clear();
    const rev = await this.store.revision();
    const cursorKv = await this.store.get(computeKeys.eventsCursor());
    const cursor = cursorKv ? Number(cursorKv.value) : rev;
    for (const kv of (await rangeAll(this.store, WATCH_PREFIXES.jobs)).items) this.setJob(kv.key, JSON.parse(kv.value) as JobDoc, kv.modRevision);
    for (const kv of (await rangeAll(this.store, WATCH_PREFIXES.devices)).items) this.devices.set(kv.key.slice(WATCH_PREFIXES.devices.length), JSON.parse(kv.value) as Device);
    const gap: KeyValue[] = [];
    for (const kv of (await rangeAll(this.store, WATCH_PREFIXES.tasks)).items) {
      this.setTask(kv.key, JSON.parse(kv.value) as TaskDoc, kv.modRevision);
      if (kv.modRevision > cursor && kv.version > 1) gap.push(kv);
    }
    // Changes between the last recorded event and now (a restart or a new leader): record the
    // state each task is in now, unless a previous leader did already.
    for (const kv of gap) {
      const t = JSON.parse(kv.value) as TaskDoc;
      const key = computeKeys.event(t.tenant, kv.modRevision, t.id);
      if (await this.store.get(key)) continue;
      this.pendingEvents.push({ key, event: this.taskEvent(t, undefined, kv.modRevision) });
    }
    this.processedRev = Math.max(rev, cursor);
    return rev;
  }

  private jobKeyOf(t: Pick<Task, 'tenant' | 'jobId'>): string {
    return schedKeys.job(t.tenant, t.jobId);
  }

  private setJob(key: string, doc: JobDoc, rev: number): void {
    this.jobs.set(key, { doc, rev });
  }

  private setTask(key: string, doc: TaskDoc, rev: number): void {
    this.tasks.set(key, { doc, rev });
    const jk = this.jobKeyOf(doc);
    let s = this.tasksByJob.get(jk);
    if (!s) this.tasksByJob.set(jk, (s = new Set()));
    s.add(key);
  }

  apply(ev: WatchEvent): void {
    this.processedRev = Math.max(this.processedRev, ev.revision);
    if (ev.key.startsWith(WATCH_PREFIXES.tasks)) {
      const prev = this.tasks.get(ev.key);
      if (prev && prev.rev >= ev.revision) return;
      if (ev.type === 'delete') {
        if (prev) {
          this.tasks.delete(ev.key);
          this.tasksByJob.get(this.jobKeyOf(prev.doc))?.delete(ev.key);
          this.dirty.add(this.jobKeyOf(prev.doc));
        }
        return;
      }
      const doc = JSON.parse(ev.value) as TaskDoc;
      this.setTask(ev.key, doc, ev.revision);
      if (prev && prev.doc.state !== doc.state) {
        this.pendingEvents.push({ key: computeKeys.event(doc.tenant, ev.revision, doc.id), event: this.taskEvent(doc, prev.doc.state, ev.revision) });
      }
      this.dirty.add(this.jobKeyOf(doc));
    } else if (ev.key.startsWith(WATCH_PREFIXES.jobs)) {
      const prev = this.jobs.get(ev.key);
      if (prev && prev.rev >= ev.revision) return;
      if (ev.type === 'delete') {
        this.jobs.delete(ev.key);
        return;
      }
      const doc = JSON.parse(ev.value) as JobDoc;
      this.setJob(ev.key, doc, ev.revision);
      if (!prev || prev.doc.state !== doc.state) {
        this.pendingEvents.push({
          key: computeKeys.event(doc.tenant, ev.revision, doc.id),
          event: {
            revision: ev.revision, at: doc.updatedAt ?? doc.createdAt, tenant: doc.tenant, kind: 'job', jobId: doc.id,
            ...(prev ? { from: prev.doc.state } : {}), to: doc.state, ...(doc.message ? { reason: doc.message } : {}),
          },
        });
      }
      this.dirty.add(ev.key);
    } else if (ev.key.startsWith(WATCH_PREFIXES.devices)) {
      const id = ev.key.slice(WATCH_PREFIXES.devices.length);
      if (ev.type === 'delete') this.devices.delete(id);
      else this.devices.set(id, JSON.parse(ev.value) as Device);
      // Jobs with work on this device need a look (it may have gone down, or come back).
      for (const r of this.tasks.values()) if (r.doc.deviceId === id && HOLDS_RESOURCES.has(r.doc.state)) this.dirty.add(this.jobKeyOf(r.doc));
    }
  }

  private taskEvent(t: TaskDoc, from: string | undefined, revision: number): ComputeEvent {
    const reason = t.state === 'pending' ? t.pendingReason ?? t.message : t.message;
    return {
      revision,
      at: t.updatedAt ?? t.createdAt,
      tenant: t.tenant,
      kind: 'task',
      jobId: t.jobId,
      taskId: t.id,
      ...(from ? { from } : {}),
      to: t.state,
      attempt: t.attempt,
      ...(t.deviceId ? { deviceId: t.deviceId } : {}),
      ...(t.exitCode !== undefined && (t.state === 'failed' || t.state === 'succeeded') ? { exitCode: t.exitCode } : {}),
      ...(reason ? { reason: reason.slice(0, 500) } : {}),
    };
  }

  /** Writes recorded events (and the cursor) in guarded batches. */
  async flushEvents(): Promise<void> {
    while (this.pendingEvents.length > 0) {
      const batch = this.pendingEvents.splice(0, 90);
      const ops: TxnOp[] = batch.map((e) => ({ type: 'put', key: e.key, value: JSON.stringify(e.event) }));
      const last = this.pendingEvents.length === 0;
      if (last) ops.push({ type: 'put', key: computeKeys.eventsCursor(), value: String(this.processedRev) });
      try {
        await leaderTxn(this.store, this.leadership, { compare: [], success: ops });
      } catch (err) {
        this.pendingEvents.unshift(...batch);
        throw err;
      }
    }
  }

  /** The tasks of one job, as the view has them. */
  jobTasks(jobKey: string): TaskDoc[] {
    const out: TaskDoc[] = [];
    for (const k of this.tasksByJob.get(jobKey) ?? []) {
      const r = this.tasks.get(k);
      if (r) out.push(r.doc);
    }
    return out;
  }
}
