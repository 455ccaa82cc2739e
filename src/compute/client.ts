/**
 * The compute groups of the typed client (`nx.jobs`, `nx.tasks`, `nx.logs`), mounted on
 * NexusClient in src/client/client.ts. Streams (`follow`, `assignments`) are async iterables of
 * server-sent events.
 *
 * @example
 * const job = await nx.jobs.create({ driver: 'exec', command: ['echo', 'hi'], resources: { cpuMillis: 100, memoryBytes: 64 << 20 } });
 * for await (const m of nx.logs.followJob(job.id)) if (m.event === 'log') for (const l of m.data as LogEntry[]) process.stdout.write(l.data);
 */
import type { Transport } from '../client/transport.js';
import type { JobSpec } from '../resources/job.js';
import { readSse, type SseMessage } from './sse.js';
import type {
  ComputeEvent, JobDoc, JobView, LogBatchPost, LogEntry, RunSpec, TaskDoc, TaskListQuery, TaskResult, TaskStatusReport,
} from './types.js';

export interface List<T> {
  items: T[];
  next?: string;
}

function qs(params: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(params).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

const enc = encodeURIComponent;

export function jobsClient(t: Transport) {
  return {
    create: (spec: JobSpec, tenant?: string) => t.json<JobView>('POST', `/v1/jobs${qs({ tenant })}`, spec),
    list: (opts: { tenant?: string; state?: string } = {}) => t.json<List<JobDoc>>('GET', `/v1/jobs${qs(opts)}`),
    get: (id: string, tenant?: string) => t.json<JobView>('GET', `/v1/jobs/${enc(id)}${qs({ tenant })}`),
    cancel: (id: string, tenant?: string) => t.json<JobView>('POST', `/v1/jobs/${enc(id)}/cancel${qs({ tenant })}`),
    /** The aggregate step's result (or the single task's). */
    result: (id: string, tenant?: string) => t.json<TaskResult>('GET', `/v1/jobs/${enc(id)}/result${qs({ tenant })}`),
    events: (id: string, tenant?: string) => t.json<List<ComputeEvent>>('GET', `/v1/events${qs({ job: id, tenant })}`),
  };
}

export function tasksClient(t: Transport) {
  return {
    list: (q: TaskListQuery = {}) => t.json<List<TaskDoc>>('GET', `/v1/tasks${qs(q)}`),
    get: (id: string, tenant?: string) => t.json<TaskDoc>('GET', `/v1/tasks/${enc(id)}${qs({ tenant })}`),
    result: (id: string, tenant?: string) => t.json<TaskResult>('GET', `/v1/tasks/${enc(id)}/result${qs({ tenant })}`),
    // Agent side.
    /** The tasks assigned to a device: `task` {type: present|gone, task}, `synced`, then live changes. */
    assignments: (deviceId: string, signal?: AbortSignal): AsyncGenerator<SseMessage> =>
      readSse(t.options, `/v1/devices/${enc(deviceId)}/assignments`, signal ? { signal } : {}),
    runSpec: (id: string, deviceId: string) => t.json<RunSpec>('GET', `/v1/tasks/${enc(id)}/run${qs({ device: deviceId })}`),
    report: (id: string, report: TaskStatusReport) => t.json<TaskDoc>('POST', `/v1/tasks/${enc(id)}/status`, report),
    postLogs: (id: string, batch: LogBatchPost) => t.json<{ stored: number }>('POST', `/v1/tasks/${enc(id)}/logs`, batch),
  };
}

export function logsClient(t: Transport) {
  return {
    /** Stored output of a task (all attempts, or one). */
    get: (taskId: string, opts: { attempt?: number; tenant?: string } = {}) => t.json<List<LogEntry>>('GET', `/v1/tasks/${enc(taskId)}/logs${qs(opts)}`),
    /** Output of a task, live, until it ends: `log` (LogEntry[]), `task`, `end`. */
    follow: (taskId: string, opts: { attempt?: number; tenant?: string; signal?: AbortSignal } = {}): AsyncGenerator<SseMessage> =>
      readSse(t.options, `/v1/tasks/${enc(taskId)}/logs${qs({ follow: 'true', attempt: opts.attempt, tenant: opts.tenant })}`, opts.signal ? { signal: opts.signal } : {}),
    /** Stored output of every task of a job. */
    job: (jobId: string, tenant?: string) => t.json<List<LogEntry>>('GET', `/v1/jobs/${enc(jobId)}/logs${qs({ tenant })}`),
    /** Output of every task of a job, live, until the job ends: `log`, `task`, `end` (the job). */
    followJob: (jobId: string, opts: { tenant?: string; signal?: AbortSignal } = {}): AsyncGenerator<SseMessage> =>
      readSse(t.options, `/v1/jobs/${enc(jobId)}/logs${qs({ follow: 'true', tenant: opts.tenant })}`, opts.signal ? { signal: opts.signal } : {}),
  };
}

export type JobsClient = ReturnType<typeof jobsClient>;
export type TasksClient = ReturnType<typeof tasksClient>;
export type LogsClient = ReturnType<typeof logsClient>;
