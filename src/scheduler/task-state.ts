/**
 * The task state machine: every allowed move is in `TASK_TRANSITIONS`, and `transition` is the
 * only way code should change `task.state`.
 *
 * ```
 *   pending ──► assigned ──► running ──► succeeded
 *      ▲  │        │  │         │  ├───► failed ──┐
 *      │  │        │  │         │  ├───► lost ────┤ (retry: back to pending, attempt + 1)
 *      │  │        │  │         │  └───► cancelled
 *      │  │        │  └─────────┴──► pending   (preempted or unassigned)
 *      │  └──► cancelled / failed (never placeable)
 *      └──────────────────────────────────────┘
 * ```
 */
import { NexusError } from '../errors/catalogue.js';
import type { Task, TaskState } from '../resources/job.js';

/** Allowed moves: `TASK_TRANSITIONS[from]` lists every legal `to`. */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  pending: ['assigned', 'cancelled', 'failed'],
  assigned: ['running', 'pending', 'succeeded', 'failed', 'lost', 'cancelled'],
  running: ['succeeded', 'failed', 'lost', 'cancelled', 'pending'],
  succeeded: [],
  failed: ['pending'],
  lost: ['pending'],
  cancelled: [],
};

/** States in which a task holds resources on a device (its allocation is booked). */
export const HOLDS_RESOURCES: ReadonlySet<TaskState> = new Set(['assigned', 'running']);
/** States a task never leaves. (`failed` and `lost` may go back to `pending` for a retry.) */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['succeeded', 'cancelled']);

export function canTransition(from: TaskState, to: TaskState): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

function iso(at: string | number | Date): string {
  return typeof at === 'string' ? at : new Date(at).toISOString();
}

/**
 * Returns a copy of `task` in state `to` at time `at`, with the bookkeeping fields of that move
 * (timestamps; placement cleared when going back to pending; attempt + 1 on a retry) and then
 * `fields` applied. Throws NEXUS_E_CONFLICT on a move the table does not allow.
 */
export function transition(task: Task, to: TaskState, at: string | number | Date, fields: Partial<Task> = {}): Task {
  const from = task.state;
  if (!canTransition(from, to)) {
    throw new NexusError('NEXUS_E_CONFLICT', { detail: `task ${task.id} cannot go from ${from} to ${to}` });
  }
  const when = iso(at);
  // Object.assign, not spread: a spread followed by new keys takes V8's slow path (~8x here).
  const next: Task = Object.assign({}, task);
  next.state = to;
  next.updatedAt = when;
  // `delete` only keys that are there: deleting turns V8 objects into slow dictionaries.
  const drop = (k: keyof Task) => {
    if (k in next) delete next[k];
  };
  switch (to) {
    case 'assigned':
      next.assignedAt = when;
      drop('pendingReason');
      drop('startedAt');
      break;
    case 'running':
      next.startedAt = when;
      break;
    case 'pending':
      drop('deviceId');
      drop('gpuIndices');
      drop('assignedAt');
      drop('startedAt');
      if (from === 'failed' || from === 'lost') {
        next.attempt = task.attempt + 1;
        drop('exitCode');
        drop('finishedAt');
        drop('preemptedBy');
      }
      break;
    default:
      next.finishedAt = when;
  }
  return Object.assign(next, fields);
}
