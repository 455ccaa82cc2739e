/**
 * Key layout of the compute documents that the scheduler does not own (jobs, tasks, alloc and
 * usage keys are in src/scheduler/keys.ts).
 *
 * - `/nexus/results/<tenant>/<taskId>`                           TaskResult (≤ 1 MiB of data)
 * - `/nexus/logs/<tenant>/<taskId>/<attempt:4>.<run>/<seq:8>`    LogBatch (one POST from an agent; `run` tells
 *                                                                apart two runs of one attempt, e.g. after a preemption)
 * - `/nexus/events/<tenant>/<revision:12>-<taskId>`              TaskEvent (one per task transition)
 * - `/nexus/jobindex/<jobId>`                                     the job's tenant (find a job, or a task, by id alone)
 * - `/nexus/compute/events-cursor`                               last store revision the event recorder saw
 */
import { ROOT } from '../store/keys.js';

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export const computeKeys = {
  results: (tenant: string) => `${ROOT}results/${tenant}/`,
  result: (tenant: string, taskId: string) => `${ROOT}results/${tenant}/${taskId}`,
  logs: () => `${ROOT}logs/`,
  taskLogs: (tenant: string, taskId: string) => `${ROOT}logs/${tenant}/${taskId}/`,
  attemptLogs: (tenant: string, taskId: string, attempt: number) => `${ROOT}logs/${tenant}/${taskId}/${pad(attempt, 4)}.`,
  logBatch: (tenant: string, taskId: string, attempt: number, run: string, seq: number) => `${ROOT}logs/${tenant}/${taskId}/${pad(attempt, 4)}.${run}/${pad(seq, 8)}`,
  events: () => `${ROOT}events/`,
  tenantEvents: (tenant: string) => `${ROOT}events/${tenant}/`,
  event: (tenant: string, revision: number, taskId: string) => `${ROOT}events/${tenant}/${pad(revision, 12)}-${taskId}`,
  jobIndex: (jobId: string) => `${ROOT}jobindex/${jobId}`,
  eventsCursor: () => `${ROOT}compute/events-cursor`,
} as const;

/** Parses `/nexus/logs/<tenant>/<taskId>/<attempt>.<run>/<seq>`. */
export function parseLogKey(key: string): { tenant: string; taskId: string; attempt: number; run: string; seq: number } | undefined {
  const rest = key.slice(`${ROOT}logs/`.length).split('/');
  if (rest.length !== 4) return undefined;
  const dot = rest[2]!.indexOf('.');
  return { tenant: rest[0]!, taskId: rest[1]!, attempt: Number(rest[2]!.slice(0, dot)), run: rest[2]!.slice(dot + 1), seq: Number(rest[3]) };
}
