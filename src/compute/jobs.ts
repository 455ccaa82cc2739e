/**
 * The compute service over the store: jobs (admission, listing, cancel), tasks, results, logs and
 * events as users see them; the agent side (what to run, status reports, log batches) lives in
 * `agent-side.ts` and is served through the same `ComputeService`.
 *
 * Every task state change goes through `updateTaskState` (src/scheduler/allocations.ts), which
 * applies the transition table and releases the task's booking in the same transaction.
 */
import { NexusError, isNexusError } from '../errors/catalogue.js';
import { DEFAULT_PRIORITY, type JobSpec, type Task } from '../resources/job.js';
import type { Tenant } from '../resources/tenant.js';
import { updateTaskState } from '../scheduler/allocations.js';
import { compileModelPattern } from '../scheduler/feasibility.js';
import { schedKeys } from '../scheduler/keys.js';
import { ZERO_USAGE, checkQuota, usageOf } from '../scheduler/quota.js';
import { FINAL_STATES } from '../scheduler/task-state.js';
import { tasksForJob, taskId as taskIdOf } from '../scheduler/tasks.js';
import { getJson } from '../store/json.js';
import type { Clock, KeyValue, StateStore, TxnOp } from '../store/types.js';
import { authorize, type Principal } from '../tenancy/roles.js';
import type { TenantService } from '../tenancy/tenants.js';
import * as agentSide from './agent-side.js';
import { jobIdOfTask, newJobId } from './ids.js';
import { computeKeys } from './keys.js';
import type {
  ComputeEvent, JobDoc, JobView, LogBatchPost, LogEntry, RunSpec, TaskDoc, TaskListQuery, TaskResult, TaskStatusReport,
} from './types.js';

/** etcd caps a transaction at 128 operations; stay well below. */
export const TXN_BATCH = 100;
/** Tasks listed inline in GET /v1/jobs/:id. */
export const VIEW_TASK_LIMIT = 1000;

export const JOB_FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Reads every key under `prefix`, page by page; `revision` is the first page's. */
export async function rangeAll(store: StateStore, prefix: string, pageSize = 500): Promise<{ items: KeyValue[]; revision: number }> {
  const items: KeyValue[] = [];
  let after: string | undefined;
  let revision = 0;
  do {
    const page = await store.range(prefix, { limit: pageSize, ...(after ? { after } : {}) });
    if (revision === 0) revision = page.revision;
    items.push(...page.items);
    after = page.next;
  } while (after);
  return { items, revision };
}

/** Shards in numeric order, the aggregate step last. */
export function byShard(a: Task, b: Task): number {
  const x = a.shardIndex < 0 ? Number.MAX_SAFE_INTEGER : a.shardIndex;
  const y = b.shardIndex < 0 ? Number.MAX_SAFE_INTEGER : b.shardIndex;
  return x - y;
}

export class ComputeService {
  constructor(
    readonly store: StateStore,
    private readonly tenants: TenantService,
    private readonly clock: Clock = Date.now,
  ) {}

  private now(): string {
    return new Date(this.clock()).toISOString();
  }

  // -------------------------------------------------------------------------------------------
  // Locating jobs and tasks
  // -------------------------------------------------------------------------------------------

  /** The tenant of job `jobId` as `by` may see it (admins and agents look it up by id). */
  private async tenantOf(by: Principal, jobId: string, tenantParam?: string): Promise<string> {
    if (tenantParam) return tenantParam;
    if (by.role === 'admin' || by.role === 'agent') {
      const kv = await this.store.get(computeKeys.jobIndex(jobId));
      if (!kv) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'job', id: jobId });
      return kv.value;
    }
    return by.tenant;
  }

  private async loadJob(by: Principal, jobId: string, action: 'jobs:read' | 'jobs:write', tenantParam?: string): Promise<JobDoc> {
    const tenant = await this.tenantOf(by, jobId, tenantParam);
    authorize(by, action, tenant);
    const job = await getJson<JobDoc>(this.store, schedKeys.job(tenant, jobId));
    if (!job) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'job', id: jobId });
    return job;
  }

  private async loadTask(by: Principal, taskId: string, tenantParam?: string): Promise<TaskDoc> {
    const jobId = jobIdOfTask(taskId);
    if (!jobId) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'task', id: taskId });
    const tenant = await this.tenantOf(by, jobId, tenantParam).catch((e) => {
      throw isNexusError(e, 'NEXUS_E_NOT_FOUND') ? new NexusError('NEXUS_E_NOT_FOUND', { kind: 'task', id: taskId }) : e;
    });
    if (by.role !== 'agent') authorize(by, 'jobs:read', tenant);
    const task = await getJson<TaskDoc>(this.store, schedKeys.task(tenant, taskId));
    if (!task) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'task', id: taskId });
    if (by.role === 'agent' && !(task.deviceId && by.deviceId === task.deviceId)) {
      throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.role, action: `read task ${taskId}: it is not assigned to this device` });
    }
    return task;
  }

  // -------------------------------------------------------------------------------------------
  // Jobs
  // -------------------------------------------------------------------------------------------

  /** Admission: validate, check the tenant quota could ever admit one task, write job + tasks. */
  async createJob(by: Principal, spec: JobSpec, tenantParam?: string): Promise<JobView> {
    const tenantName = tenantParam ?? by.tenant;
    authorize(by, 'jobs:write', tenantName);
    let tenant: Tenant;
    try {
      tenant = await this.tenants.get(tenantName);
    } catch (e) {
      if (isNexusError(e, 'NEXUS_E_NOT_FOUND')) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: tenantName }, { field: 'tenant' });
      throw e;
    }
    validateSpec(spec);
    for (const [field, res] of [['resources', spec.resources], ['aggregate.resources', spec.aggregate?.resources]] as const) {
      if (!res) continue;
      const reason = checkQuota(tenant.quotas, ZERO_USAGE, usageOf(res, 1), tenantName);
      if (reason) throw new NexusError('NEXUS_E_QUOTA_EXCEEDED', { detail: reason }, { field });
    }
    const now = this.clock();
    const job: JobDoc = {
      id: newJobId(now),
      tenant: tenantName,
      state: 'pending',
      spec: { ...spec, priority: spec.priority ?? DEFAULT_PRIORITY, count: spec.count ?? 1 },
      createdAt: new Date(now).toISOString(),
    };
    const tasks = tasksForJob(job, now);
    const jobKey = schedKeys.job(tenantName, job.id);
    const first: TxnOp[] = [
      { type: 'put', key: jobKey, value: JSON.stringify(job) },
      { type: 'put', key: computeKeys.jobIndex(job.id), value: tenantName },
    ];
    let i = 0;
    for (; i < tasks.length && first.length < TXN_BATCH; i++) first.push({ type: 'put', key: schedKeys.task(tenantName, tasks[i]!.id), value: JSON.stringify(tasks[i]) });
    const r = await this.store.txn({ compare: [{ key: jobKey, target: 'version', op: '=', value: 0 }], success: first });
    if (!r.succeeded) throw new NexusError('NEXUS_E_ALREADY_EXISTS', { kind: 'job', id: job.id });
    // The rest in batches. A crash here leaves a job with fewer tasks; the controller adds the missing ones.
    // Each put is conditional on the task not existing yet, so this never resets a task the
    // controller created (and the scheduler placed) in the meantime.
    while (i < tasks.length) {
      const batch = tasks.slice(i, i + TXN_BATCH);
      i += batch.length;
      const puts = batch.map((t) => ({ type: 'put' as const, key: schedKeys.task(tenantName, t.id), value: JSON.stringify(t) }));
      const ok = await this.store.txn({ compare: puts.map((p) => ({ key: p.key, target: 'version' as const, op: '=' as const, value: 0 })), success: puts });
      if (!ok.succeeded) {
        for (const p of puts) await this.store.txn({ compare: [{ key: p.key, target: 'version', op: '=', value: 0 }], success: [p] });
      }
    }
    return this.view(job);
  }

  async listJobs(by: Principal, tenantParam?: string, state?: string): Promise<JobDoc[]> {
    const scope = tenantParam ?? (by.role === 'admin' ? undefined : by.tenant);
    authorize(by, 'jobs:read', scope);
    const { items } = await rangeAll(this.store, scope ? schedKeys.tenantJobs(scope) : schedKeys.jobs());
    const jobs = items.map((kv) => JSON.parse(kv.value) as JobDoc).filter((j) => !state || j.state === state);
    return jobs.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async getJob(by: Principal, id: string, tenantParam?: string): Promise<JobView> {
    return this.view(await this.loadJob(by, id, 'jobs:read', tenantParam));
  }

  /** The job with its tasks (the first VIEW_TASK_LIMIT) and a count per state. */
  async view(job: JobDoc): Promise<JobView> {
    const tasks = await this.jobTasks(job.tenant, job.id);
    const counts: Record<string, number> = {};
    for (const t of tasks) counts[t.state] = (counts[t.state] ?? 0) + 1;
    const shown = tasks.length > VIEW_TASK_LIMIT ? tasks.slice(0, VIEW_TASK_LIMIT) : tasks;
    return { ...job, tasks: shown, counts, ...(tasks.length > VIEW_TASK_LIMIT ? { tasksTruncated: true } : {}) };
  }

  async jobTasks(tenant: string, jobId: string): Promise<TaskDoc[]> {
    const { items } = await rangeAll(this.store, `${schedKeys.tenantTasks(tenant)}${jobId}-`);
    return items.map((kv) => JSON.parse(kv.value) as TaskDoc).sort(byShard);
  }

  /**
   * Cancels a job: the job turns `cancelled` at once and every task that has not ended is moved
   * to `cancelled` (its agent sees it leave its device and kills it). Idempotent; a job that has
   * already ended is returned as it is.
   */
  async cancelJob(by: Principal, id: string, tenantParam?: string): Promise<JobView> {
    const job = await this.loadJob(by, id, 'jobs:write', tenantParam);
    const key = schedKeys.job(job.tenant, id);
    let current = job;
    if (!JOB_FINAL.has(job.state)) {
      for (;;) {
        const kv = await this.store.get(key);
        if (!kv) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'job', id });
        const doc = JSON.parse(kv.value) as JobDoc;
        if (JOB_FINAL.has(doc.state)) {
          current = doc;
          break;
        }
        const now = this.now();
        const next: JobDoc = { ...doc, state: 'cancelled', updatedAt: now, cancelRequestedAt: now, message: `cancelled by ${by.tokenId}` };
        const r = await this.store.txn({ compare: [{ key, target: 'modRevision', op: '=', value: kv.modRevision }], success: [{ type: 'put', key, value: JSON.stringify(next) }] });
        if (r.succeeded) {
          current = next;
          break;
        }
      }
    }
    if (current.state === 'cancelled') await cancelTasks(this.store, await this.jobTasks(current.tenant, id), this.clock, 'job cancelled');
    return this.view(current);
  }

  // -------------------------------------------------------------------------------------------
  // Tasks, results, events, logs
  // -------------------------------------------------------------------------------------------

  async listTasks(by: Principal, q: TaskListQuery): Promise<TaskDoc[]> {
    let scope = q.tenant ?? (by.role === 'admin' ? undefined : by.tenant);
    if (q.job && !scope) scope = await this.tenantOf(by, q.job).catch(() => undefined);
    if (q.job && !scope) return [];
    authorize(by, 'jobs:read', scope);
    const prefix = scope ? `${schedKeys.tenantTasks(scope)}${q.job ? `${q.job}-` : ''}` : schedKeys.tasks();
    const limit = q.limit ? Number(q.limit) : 10_000;
    const { items } = await rangeAll(this.store, prefix);
    const out: TaskDoc[] = [];
    for (const kv of items) {
      const t = JSON.parse(kv.value) as TaskDoc;
      if (q.state && t.state !== q.state) continue;
      if (q.device && t.deviceId !== q.device) continue;
      if (q.job && t.jobId !== q.job) continue;
      out.push(t);
    }
    out.sort((a, b) => a.jobId.localeCompare(b.jobId) || byShard(a, b));
    return out.slice(0, limit);
  }

  async getTask(by: Principal, id: string, tenantParam?: string): Promise<TaskDoc> {
    return this.loadTask(by, id, tenantParam);
  }

  async getResult(by: Principal, taskId: string, tenantParam?: string): Promise<TaskResult> {
    const task = await this.loadTask(by, taskId, tenantParam);
    const r = await getJson<TaskResult>(this.store, computeKeys.result(task.tenant, taskId));
    if (!r) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'result of task', id: taskId });
    return r;
  }

  /** The job's result: the aggregate step's when it has one, else the single task's. */
  async jobResult(by: Principal, jobId: string, tenantParam?: string): Promise<TaskResult> {
    const job = await this.loadJob(by, jobId, 'jobs:read', tenantParam);
    if (!job.spec.aggregate && (job.spec.count ?? 1) > 1) {
      throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'result of job', id: `${jobId} (it has ${job.spec.count} shards and no aggregate step: read each task's result)` });
    }
    const tid = taskIdOf(jobId, job.spec.aggregate ? -1 : 0);
    const r = await getJson<TaskResult>(this.store, computeKeys.result(job.tenant, tid));
    if (!r) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'result of job', id: jobId });
    return r;
  }

  async listEvents(by: Principal, q: { job?: string; tenant?: string; limit?: string }): Promise<ComputeEvent[]> {
    let scope = q.tenant ?? (by.role === 'admin' ? undefined : by.tenant);
    if (q.job && !scope) scope = await this.tenantOf(by, q.job).catch(() => undefined);
    if (q.job && !scope) return [];
    authorize(by, 'jobs:read', scope);
    const limit = q.limit ? Number(q.limit) : 10_000;
    const { items } = await rangeAll(this.store, scope ? computeKeys.tenantEvents(scope) : computeKeys.events());
    const out: ComputeEvent[] = [];
    for (const kv of items) {
      const e = JSON.parse(kv.value) as ComputeEvent;
      if (q.job && e.jobId !== q.job) continue;
      out.push(e);
    }
    out.sort((a, b) => a.revision - b.revision || (a.taskId ?? '').localeCompare(b.taskId ?? ''));
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  /** Stored log lines of a task (every attempt, or one), in order. */
  async readLogs(by: Principal, taskId: string, attempt?: number, tenantParam?: string): Promise<LogEntry[]> {
    const task = await this.loadTask(by, taskId, tenantParam);
    const prefix = attempt === undefined ? computeKeys.taskLogs(task.tenant, taskId) : computeKeys.attemptLogs(task.tenant, taskId, attempt);
    const { items } = await rangeAll(this.store, prefix);
    return items.flatMap((kv) => logEntries(kv, task.shardIndex));
  }

  /** Tenant of a task id and the authorization to read it (for streaming routes). */
  async authorizeTaskRead(by: Principal, taskId: string, tenantParam?: string): Promise<TaskDoc> {
    return this.loadTask(by, taskId, tenantParam);
  }

  async authorizeJobRead(by: Principal, jobId: string, tenantParam?: string): Promise<JobDoc> {
    return this.loadJob(by, jobId, 'jobs:read', tenantParam);
  }

  // -------------------------------------------------------------------------------------------
  // Agent side (agent-side.ts)
  // -------------------------------------------------------------------------------------------

  /** Everything the agent needs to start the current attempt of a task assigned to `deviceId`. */
  async runSpec(by: Principal, taskId: string, deviceId: string): Promise<RunSpec> {
    return agentSide.runSpec(this.store, by, taskId, deviceId);
  }

  /** An agent's report on the attempt it runs: `running`, or how it ended (with its result). */
  async report(by: Principal, taskId: string, deviceId: string, rep: TaskStatusReport): Promise<TaskDoc> {
    return agentSide.report(this.store, this.clock, by, taskId, deviceId, rep);
  }

  /** Stores one batch of a task attempt's output. */
  async appendLogs(by: Principal, taskId: string, deviceId: string, batch: LogBatchPost): Promise<{ stored: number }> {
    return agentSide.appendLogs(this.store, by, taskId, deviceId, batch);
  }
}

/** The log lines of one stored batch. */
export function logEntries(kv: { key: string; value: string }, shard?: number): LogEntry[] {
  const parts = kv.key.split('/');
  const taskId = parts[parts.length - 3]!;
  const suffix = taskId.slice(taskId.indexOf('-') + 1);
  const shardIndex = shard ?? (suffix === 'aggregate' ? -1 : /^\d+$/.test(suffix) ? Number(suffix) : undefined);
  const attempt = Number(parts[parts.length - 2]!.split('.')[0]);
  const doc = JSON.parse(kv.value) as { chunks: { stream: 'stdout' | 'stderr'; data: string; ts: number }[]; truncated?: boolean };
  const out: LogEntry[] = doc.chunks.map((c) => ({ taskId, attempt, stream: c.stream, data: c.data, ts: c.ts, ...(shardIndex !== undefined ? { shardIndex } : {}) }));
  if (doc.truncated) out.push({ taskId, attempt, stream: 'stderr', data: '[nexus: output truncated: the log size limit was reached]\n', ts: doc.chunks.at(-1)?.ts ?? 0, ...(shardIndex !== undefined ? { shardIndex } : {}) });
  return out;
}

/** Moves every task of `tasks` that has not ended to `cancelled` (a failed task waiting for its retry stays failed). */
export async function cancelTasks(store: StateStore, tasks: Task[], clock: Clock, reason: string, guard?: () => import('../store/types.js').Compare[]): Promise<number> {
  let n = 0;
  for (const t of tasks) {
    if (FINAL_STATES.has(t.state) || t.state === 'failed' || t.state === 'lost') continue;
    try {
      await updateTaskState(store, t.tenant, t.id, 'cancelled', {
        at: clock(), from: ['pending', 'assigned', 'running'], fields: { message: reason } as Partial<Task>, ...(guard ? { guard } : {}),
      });
      n++;
    } catch (e) {
      if (!isNexusError(e, 'NEXUS_E_CONFLICT') && !isNexusError(e, 'NEXUS_E_NOT_FOUND')) throw e;
    }
  }
  return n;
}

/** Checks what the schema cannot: patterns compile, podman has an image, inputs are inline. */
export function validateSpec(spec: JobSpec): void {
  if (spec.resources.gpus?.model) compileModelPattern(spec.resources.gpus.model);
  if (spec.aggregate?.resources?.gpus?.model) compileModelPattern(spec.aggregate.resources.gpus.model);
  if (spec.driver === 'podman' && !spec.image) throw new NexusError('NEXUS_E_VALIDATION', { field: 'image', detail: 'the podman driver needs an image' });
  const seen = new Set<string>();
  (spec.workdir?.files ?? []).forEach((f, i) => {
    if (f.object !== undefined) throw new NexusError('NEXUS_E_VALIDATION', { field: `workdir.files.${i}.object`, detail: 'object inputs are not supported yet; inline the content' });
    if (f.content === undefined) throw new NexusError('NEXUS_E_VALIDATION', { field: `workdir.files.${i}.content`, detail: 'it is required' });
    if (f.path === '.nexus' || f.path.startsWith('.nexus/') || f.path === 'shards' || f.path.startsWith('shards/')) {
      throw new NexusError('NEXUS_E_VALIDATION', { field: `workdir.files.${i}.path`, detail: '.nexus/ and shards/ are reserved' });
    }
    if (seen.has(f.path)) throw new NexusError('NEXUS_E_VALIDATION', { field: `workdir.files.${i}.path`, detail: `${f.path} is listed twice` });
    seen.add(f.path);
  });
  const total = (spec.workdir?.files ?? []).reduce((n, f) => n + Buffer.byteLength(f.content ?? ''), 0);
  if (total > 768 * 1024) throw new NexusError('NEXUS_E_VALIDATION', { field: 'workdir.files', detail: `inline files may hold at most 768 KiB in all, got ${total} bytes` });
}
