/**
 * The booking documents and the one safe way to move a task between states.
 *
 * Invariant (kept by every writer, checked by the tests): the `/nexus/alloc/<device>` document
 * equals the sum of the tasks in state assigned|running on that device, and
 * `/nexus/usage/<tenant>` the sum of that tenant's such tasks. Both change only in a transaction
 * that also moves the task in or out of those states, compared on every key's modRevision.
 */
import { compareHolds } from '../store/compare.js';
import { NexusError } from '../errors/catalogue.js';
import type { Task, TaskState } from '../resources/job.js';
import type { Compare, StateStore, TxnOp } from '../store/types.js';
import type { Allocated } from './candidate.js';
import { schedKeys } from './keys.js';
import { ZERO_USAGE, addUsage, usageOf, type UsageDoc } from './quota.js';
import { HOLDS_RESOURCES, transition } from './task-state.js';

/** `/nexus/alloc/<deviceId>`: what is booked on a device. */
export interface AllocDoc {
  deviceId: string;
  cpuMillis: number;
  memoryBytes: number;
  /** GPU `index` values in use. */
  gpuIndices: number[];
  tasks: number;
  /** Booked accelerators by type. */
  accelerators?: Record<string, number>;
}

export function emptyAllocated(): Allocated {
  return { cpuMillis: 0, memoryBytes: 0, gpuIndices: new Set(), tasks: 0 };
}

export function allocatedFromDoc(doc: AllocDoc | undefined, into: Allocated = emptyAllocated()): Allocated {
  into.cpuMillis = doc?.cpuMillis ?? 0;
  into.memoryBytes = doc?.memoryBytes ?? 0;
  into.gpuIndices = new Set(doc?.gpuIndices ?? []);
  into.tasks = doc?.tasks ?? 0;
  if (doc?.accelerators && Object.keys(doc.accelerators).length > 0) into.accelerators = new Map(Object.entries(doc.accelerators));
  else delete into.accelerators;
  return into;
}

export function allocDocOf(deviceId: string, a: Allocated): AllocDoc {
  const doc: AllocDoc = {
    deviceId,
    cpuMillis: a.cpuMillis,
    memoryBytes: a.memoryBytes,
    gpuIndices: a.gpuIndices.size === 0 ? [] : [...a.gpuIndices].sort((x, y) => x - y),
    tasks: a.tasks,
  };
  if (a.accelerators && a.accelerators.size > 0) doc.accelerators = Object.fromEntries(a.accelerators);
  return doc;
}

/** What one task books on its device. */
export function bookingOf(task: Task): { cpuMillis: number; memoryBytes: number; gpuIndices: number[]; accelerators?: { type: string; count: number }[] } {
  return {
    cpuMillis: task.resources.cpuMillis,
    memoryBytes: task.resources.memoryBytes,
    gpuIndices: task.gpuIndices ?? [],
    ...(task.resources.accelerators ? { accelerators: task.resources.accelerators } : {}),
  };
}

export interface UpdateTaskOptions {
  /** Time of the move (ms, ISO string or Date). */
  at: number | string | Date;
  /** Fields to set along with the move (exitCode, failedDeviceIds, notBefore…). */
  fields?: Partial<Task>;
  /** Leadership compares to add (controllers pass `leadership.guard()`). */
  guard?: () => Compare[];
  /** Only move the task if it is in one of these states now (else NEXUS_E_CONFLICT). */
  from?: readonly TaskState[];
}

/**
 * Moves a task to `to` (see task-state.ts) and, when it stops holding resources, releases its
 * booking on the device and in the tenant's usage, all in one transaction compared on the
 * modRevision of the three keys (retried on conflict). Agents and controllers should change task
 * state only through this, so bookings never leak.
 */
export async function updateTaskState(store: StateStore, tenant: string, taskId: string, to: TaskState, options: UpdateTaskOptions): Promise<Task> {
  const key = schedKeys.task(tenant, taskId);
  for (let attempt = 0; attempt < 100; attempt++) {
    const kv = await store.get(key);
    if (!kv) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'task', id: taskId });
    const task = JSON.parse(kv.value) as Task;
    if (options.from && !options.from.includes(task.state)) {
      throw new NexusError('NEXUS_E_CONFLICT', { detail: `task ${taskId} is ${task.state}, not ${options.from.join(' or ')}` });
    }
    const next = transition(task, to, options.at, options.fields);
    const compare: Compare[] = [...(options.guard?.() ?? []), { key, target: 'modRevision', op: '=', value: kv.modRevision }];
    const success: TxnOp[] = [{ type: 'put', key, value: JSON.stringify(next) }];
    if (HOLDS_RESOURCES.has(task.state) && !HOLDS_RESOURCES.has(to) && task.deviceId) {
      const aKey = schedKeys.alloc(task.deviceId);
      const uKey = schedKeys.usage(tenant);
      const [akv, ukv] = await Promise.all([store.get(aKey), store.get(uKey)]);
      const a = allocatedFromDoc(akv ? (JSON.parse(akv.value) as AllocDoc) : undefined);
      const b = bookingOf(task);
      a.cpuMillis -= b.cpuMillis;
      a.memoryBytes -= b.memoryBytes;
      a.tasks -= 1;
      for (const i of b.gpuIndices) a.gpuIndices.delete(i);
      for (const x of b.accelerators ?? []) {
        const n = (a.accelerators?.get(x.type) ?? 0) - x.count;
        if (n > 0) a.accelerators!.set(x.type, n);
        else a.accelerators?.delete(x.type);
      }
      const u: UsageDoc = ukv ? (JSON.parse(ukv.value) as UsageDoc) : { tenant, ...ZERO_USAGE };
      addUsage(u, usageOf(task.resources), -1);
      compare.push({ key: aKey, target: 'modRevision', op: '=', value: akv?.modRevision ?? 0 });
      compare.push({ key: uKey, target: 'modRevision', op: '=', value: ukv?.modRevision ?? 0 });
      success.push({ type: 'put', key: aKey, value: JSON.stringify(allocDocOf(task.deviceId, a)) });
      success.push({ type: 'put', key: uKey, value: JSON.stringify(u) });
    }
    const r = await store.txn({ compare, success, failure: (options.guard?.() ?? []).map((c) => ({ type: 'get' as const, key: c.key })) });
    if (r.succeeded) return next;
    const guard = options.guard?.() ?? [];
    for (let i = 0; i < guard.length; i++) {
      const got = (r.results[i] as { kv?: import('../store/types.js').KeyValue }).kv;
      if (!compareHolds(got, guard[i]!)) throw new NexusError('NEXUS_E_NOT_LEADER');
    }
  }
  throw new NexusError('NEXUS_E_CONFLICT', { detail: `too much contention updating task ${taskId}; retry` });
}

export { compareHolds } from '../store/compare.js';
