/**
 * The agent side of the compute service: everything an agent needs to start the current attempt
 * of a task assigned to its device, its reports on that attempt (`running`, or how it ended, with
 * the result), and the batches of output it ships. An agent acts only for its own device and only
 * on the current attempt; anything else answers NEXUS_E_TASK_MOVED. `ComputeService` (jobs.ts)
 * serves these to the routes.
 */
import { NexusError, isNexusError } from '../errors/catalogue.js';
import type { Task, TaskState } from '../resources/job.js';
import type { Device } from '../resources/device.js';
import { updateTaskState } from '../scheduler/allocations.js';
import { schedKeys } from '../scheduler/keys.js';
import { HOLDS_RESOURCES } from '../scheduler/task-state.js';
import { taskId as taskIdOf } from '../scheduler/tasks.js';
import { getJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';
import type { Principal } from '../tenancy/roles.js';
import { jobIdOfTask } from './ids.js';
import { computeKeys } from './keys.js';
import type { JobDoc, LogBatchPost, RunSpec, TaskDoc, TaskResult, TaskStatusReport } from './types.js';

/** Largest result kept per task (the rest is cut and `truncated` set). */
export const RESULT_LIMIT = 1024 * 1024;
/** Largest log batch the server accepts, in bytes of text. */
export const LOG_BATCH_LIMIT = 512 * 1024;

function utf8OrBase64(buf: Buffer): { data: string; encoding: 'utf8' | 'base64' } {
  const text = buf.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buf) ? { data: text, encoding: 'utf8' } : { data: buf.toString('base64'), encoding: 'base64' };
}

/** Agents act only on tasks assigned to their own device (admins may act for any device). */
function checkAgent(by: Principal, deviceId: string): void {
  if (by.role === 'admin') return;
  if (by.role !== 'agent') throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.role, action: 'report on tasks (agents only)' });
  // Only a device credential acts for its device; an unbound agent token is a join token.
  if (by.deviceId !== deviceId) {
    throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.deviceId ? `agent of device ${by.deviceId}` : 'agent (join token)', action: `act for device ${deviceId}` });
  }
}

/** Loads a task an agent acts on and checks it is still this attempt on this device. */
async function agentTask(store: StateStore, by: Principal, taskId: string, deviceId: string, attempt?: number): Promise<{ task: TaskDoc; job: JobDoc }> {
  checkAgent(by, deviceId);
  const jobId = jobIdOfTask(taskId);
  const tenant = jobId ? (await store.get(computeKeys.jobIndex(jobId)))?.value : undefined;
  const task = tenant ? await getJson<TaskDoc>(store, schedKeys.task(tenant, taskId)) : undefined;
  const job = task ? await getJson<JobDoc>(store, schedKeys.job(task.tenant, task.jobId)) : undefined;
  if (!task || !job) throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: 'it no longer exists' });
  if (task.deviceId !== deviceId) {
    throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: `it is ${task.state}${task.deviceId ? ` on device ${task.deviceId}` : ''}` });
  }
  if (attempt !== undefined && attempt !== task.attempt) {
    throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: `attempt ${attempt} is over; the task is at attempt ${task.attempt}` });
  }
  return { task, job };
}

/** Everything the agent needs to start the current attempt of a task assigned to `deviceId`. */
export async function runSpec(store: StateStore, by: Principal, taskId: string, deviceId: string): Promise<RunSpec> {
  const { task, job } = await agentTask(store, by, taskId, deviceId);
  if (!HOLDS_RESOURCES.has(task.state)) {
    throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: `it is ${task.state}` });
  }
  const s = job.spec;
  const agg = task.shardIndex < 0 ? s.aggregate : undefined;
  if (task.shardIndex < 0 && !agg) throw new NexusError('NEXUS_E_INTERNAL', { detail: `task ${taskId} is an aggregate step of a job without one` });
  const files: RunSpec['files'] = (s.workdir?.files ?? []).map((f) => ({ path: f.path, content: f.content ?? '', ...(f.mode !== undefined ? { mode: f.mode } : {}) }));
  if (agg) {
    for (let i = 0; i < (s.count ?? 1); i++) {
      const r = await getJson<TaskResult>(store, computeKeys.result(task.tenant, taskIdOf(job.id, i)));
      files.push({ path: `shards/${i}`, content: r?.data ?? '', encoding: r?.encoding ?? 'utf8' });
    }
  }
  let gpus: RunSpec['gpus'];
  if (task.gpuIndices && task.gpuIndices.length > 0) {
    const dev = await getJson<Device>(store, keys.device(deviceId));
    const list = (dev?.capabilities.gpus ?? []) as { index?: number; vendor?: string }[];
    const vendor = task.resources.gpus?.vendor ?? list.find((g) => g.index === task.gpuIndices![0])?.vendor ?? 'nvidia';
    gpus = { vendor, indices: task.gpuIndices };
  }
  const image = agg ? agg.image ?? s.image : s.image;
  return {
    taskId,
    jobId: job.id,
    tenant: job.tenant,
    attempt: task.attempt,
    shardIndex: task.shardIndex,
    shardCount: s.count ?? 1,
    driver: s.driver,
    command: agg ? agg.command : s.command,
    env: { ...(s.env ?? {}), ...(agg?.env ?? {}) },
    ...(image ? { image } : {}),
    files,
    ...(agg ? { shardResultsDir: 'shards' } : {}),
    ...(s.timeoutSeconds ? { timeoutSeconds: s.timeoutSeconds } : {}),
    cpuMillis: task.resources.cpuMillis,
    memoryBytes: task.resources.memoryBytes,
    ...(gpus ? { gpus } : {}),
  };
}

/**
 * An agent's report on the attempt it runs: `running`, or how it ended (with its result).
 * Idempotent: reporting the state the task is already in is a no-op. A task that has moved on
 * (cancelled, preempted, another attempt) answers NEXUS_E_TASK_MOVED so the agent stops it.
 */
export async function report(store: StateStore, clock: Clock, by: Principal, taskId: string, deviceId: string, rep: TaskStatusReport): Promise<TaskDoc> {
  const { task } = await agentTask(store, by, taskId, deviceId, rep.attempt);
  if (task.state === rep.state) return task;
  if (!HOLDS_RESOURCES.has(task.state)) {
    throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: `it is already ${task.state}` });
  }
  if (rep.result) {
    const raw = rep.result.encoding === 'base64' ? Buffer.from(rep.result.data, 'base64') : Buffer.from(rep.result.data, 'utf8');
    const cut = raw.length > RESULT_LIMIT ? raw.subarray(0, RESULT_LIMIT) : raw;
    const enc = utf8OrBase64(cut);
    const doc: TaskResult = {
      taskId, jobId: task.jobId, tenant: task.tenant, attempt: task.attempt,
      ...(rep.exitCode !== undefined ? { exitCode: rep.exitCode } : {}),
      data: enc.data, encoding: enc.encoding,
      truncated: Boolean(rep.result.truncated) || raw.length > RESULT_LIMIT,
      size: rep.result.size ?? raw.length,
      at: new Date(clock()).toISOString(),
    };
    await store.put(computeKeys.result(task.tenant, taskId), JSON.stringify(doc));
  }
  const fields: Partial<TaskDoc> = {};
  if (rep.exitCode !== undefined) fields.exitCode = rep.exitCode;
  if (rep.message) fields.message = rep.message.slice(0, 4096);
  else if (rep.state !== 'running') fields.message = undefined;
  if (rep.state === 'failed' || rep.state === 'lost') fields.failedDeviceIds = [...new Set([...(task.failedDeviceIds ?? []), deviceId])];
  const from: TaskState[] = rep.state === 'running' ? ['assigned'] : ['assigned', 'running'];
  try {
    const next = await updateTaskState(store, task.tenant, taskId, rep.state, { at: clock(), from, fields: fields as Partial<Task> });
    if (next.deviceId !== deviceId || next.attempt !== rep.attempt) throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: `it moved while reporting` });
    return clean(next as TaskDoc);
  } catch (e) {
    if (isNexusError(e, 'NEXUS_E_CONFLICT')) {
      const now = await getJson<TaskDoc>(store, schedKeys.task(task.tenant, taskId));
      if (now && now.state === rep.state && now.attempt === rep.attempt && now.deviceId === deviceId) return now;
      throw new NexusError('NEXUS_E_TASK_MOVED', { id: taskId, device: deviceId, detail: `it is ${now?.state ?? 'gone'}` });
    }
    throw e;
  }
}

/** Stores one batch of a task attempt's output. */
export async function appendLogs(store: StateStore, by: Principal, taskId: string, deviceId: string, batch: LogBatchPost): Promise<{ stored: number }> {
  const { task } = await agentTask(store, by, taskId, deviceId, batch.attempt);
  let bytes = 0;
  for (const c of batch.chunks) bytes += Buffer.byteLength(c.data);
  if (bytes > LOG_BATCH_LIMIT) throw new NexusError('NEXUS_E_VALIDATION', { field: 'chunks', detail: `a batch may hold at most ${LOG_BATCH_LIMIT} bytes of output, got ${bytes}` });
  const value = JSON.stringify({ chunks: batch.chunks, ...(batch.truncated ? { truncated: true } : {}) });
  await store.put(computeKeys.logBatch(task.tenant, taskId, batch.attempt, batch.run, batch.seq), value);
  return { stored: batch.chunks.length };
}

/** `undefined`-valued fields dropped (JSON would drop them anyway; keeps deepEqual tests honest). */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
