/**
 * A run of a task as the agent's task runner keeps it: the record written beside each work dir
 * (which driver, how much output was shipped), the run in memory, the run's name (task, attempt
 * and assignment time, so two runs of one attempt differ), and which server answers mean "try
 * again" and which mean "the task left this device".
 */
import { ApiError } from '../client/transport.js';
import type { TaskDoc } from '../compute/types.js';
import type { RunningTask } from './drivers/types.js';

/** What the runner keeps beside each work dir. */
export interface RunRecord {
  taskId: string;
  attempt: number;
  run: string;
  driver: 'exec' | 'podman';
  /** characters of each stream shipped so far */
  sent: { stdout: number; stderr: number };
  seq: number;
  /** bytes shipped (for the cap) */
  shipped: number;
  truncated?: boolean;
}

export interface LocalRun {
  name: string;
  task: TaskDoc;
  rec?: RunRecord;
  running?: RunningTask;
  /** Why the server took the task away (we then stop it and report nothing). */
  gone?: string;
  /** The run ended here and its final report is on its way. */
  reporting?: boolean;
  done: Promise<void>;
}

export const RETRYABLE = (e: unknown) => !(e instanceof ApiError) || e.status >= 500 || e.code === 'NEXUS_E_CONNECT';
export const MOVED = (e: unknown) => e instanceof ApiError && (e.code === 'NEXUS_E_TASK_MOVED' || e.code === 'NEXUS_E_NOT_FOUND');

/** `run` tells two runs of one attempt apart (a preempted task placed again): its assignment time. */
export function runIdOf(task: Pick<TaskDoc, 'assignedAt' | 'createdAt'>): string {
  const at = Date.parse(task.assignedAt ?? task.createdAt);
  return (Number.isFinite(at) ? at : 0).toString(36);
}

export function runName(task: Pick<TaskDoc, 'id' | 'attempt' | 'assignedAt' | 'createdAt'>): string {
  return `${task.id}.${task.attempt}.${runIdOf(task)}`;
}
