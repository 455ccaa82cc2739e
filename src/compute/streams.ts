/**
 * Live streams over store watches: a device's assignments (what its agent must run) and the logs
 * of a task or a whole job until it ends. Each reads the current state first, then watches from
 * the revision before that read, so nothing falls between the two.
 */
import type { Task } from '../resources/job.js';
import { schedKeys } from '../scheduler/keys.js';
import { HOLDS_RESOURCES } from '../scheduler/task-state.js';
import type { StateStore, WatchEvent } from '../store/types.js';
import { logEntries, rangeAll } from './jobs.js';
import { AsyncQueue } from './sse.js';
import type { AssignmentMessage, TaskDoc } from './types.js';

export type Send = (event: string, data: unknown) => void;

interface Tagged {
  src: number;
  ev: WatchEvent;
}

/** Merges several watches (each from `fromRevision`) into one queue; closes them on abort. */
function mergedWatch(store: StateStore, prefixes: string[], fromRevision: number, signal: AbortSignal): AsyncQueue<Tagged> {
  const q = new AsyncQueue<Tagged>();
  const watches = prefixes.map((p) => store.watch(p, { fromRevision }));
  const stop = () => {
    for (const w of watches) w.close();
    q.close();
  };
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  watches.forEach((w, src) => {
    void (async () => {
      try {
        for await (const ev of w) q.push({ src, ev });
      } catch (err) {
        q.fail(err);
      }
    })();
  });
  return q;
}

/**
 * Streams `present` for every task assigned to (or running on) `deviceId`, then `synced`, then
 * live changes: `present` when a task is (still) here, `gone` when it left (ended, cancelled,
 * preempted, moved). Runs until `signal` aborts.
 */
export async function streamAssignments(store: StateStore, deviceId: string, send: Send, signal: AbortSignal): Promise<void> {
  const rev0 = await store.revision();
  const here = new Map<string, TaskDoc>();
  const isHere = (t: Task) => t.deviceId === deviceId && HOLDS_RESOURCES.has(t.state);
  const { items } = await rangeAll(store, schedKeys.tasks());
  for (const kv of items) {
    // A task placed here names the device in its document: skip parsing every other one.
    if (!kv.value.includes(deviceId)) continue;
    const t = JSON.parse(kv.value) as TaskDoc;
    if (!isHere(t)) continue;
    here.set(kv.key, t);
    send('task', { type: 'present', task: t } satisfies AssignmentMessage);
  }
  send('synced', { revision: rev0, tasks: here.size });
  for await (const { ev } of mergedWatch(store, [schedKeys.tasks()], rev0 + 1, signal)) {
    if (ev.type === 'put') {
      if (!here.has(ev.key) && !ev.value.includes(deviceId)) continue; // not here, and not placed here
      const t = JSON.parse(ev.value) as TaskDoc;
      if (isHere(t)) {
        here.set(ev.key, t);
        send('task', { type: 'present', task: t } satisfies AssignmentMessage);
      } else if (here.has(ev.key)) {
        here.delete(ev.key);
        send('task', { type: 'gone', task: t } satisfies AssignmentMessage);
      }
    } else if (here.has(ev.key)) {
      const t = here.get(ev.key)!;
      here.delete(ev.key);
      send('task', { type: 'gone', task: t } satisfies AssignmentMessage);
    }
  }
}

export interface FollowOptions {
  /** Log batches under this prefix are streamed (`log` events: an array of LogEntry). */
  logPrefix: string;
  /** The document whose state ends the stream (a task or a job). */
  endKey: string;
  isEnd: (doc: { state: string }) => boolean;
  /** Tasks under this prefix are streamed as `task` events when they change. */
  taskPrefix?: string;
  /** Only batches of this attempt. */
  attempt?: number;
}

/**
 * Streams stored and live log batches until the end document reaches an end state, then sends
 * `end` with that document. Agents post every log batch of an attempt before reporting how it
 * ended, so once the end is seen a last read of the prefix finds every remaining batch.
 */
export async function followLogs(store: StateStore, o: FollowOptions, send: Send, signal: AbortSignal): Promise<void> {
  const rev0 = await store.revision();
  const sent = new Set<string>();
  const wanted = (key: string) => o.attempt === undefined || key.split('/').at(-2)!.startsWith(`${String(o.attempt).padStart(4, '0')}.`);
  const emit = (kv: { key: string; value: string }) => {
    if (sent.has(kv.key) || !wanted(kv.key)) return;
    sent.add(kv.key);
    send('log', logEntries(kv));
  };
  const drain = async () => {
    for (const kv of (await rangeAll(store, o.logPrefix)).items) emit(kv);
  };
  const endKv = await store.get(o.endKey);
  if (!endKv) {
    send('end', { missing: true });
    return;
  }
  if (o.taskPrefix) for (const kv of (await rangeAll(store, o.taskPrefix)).items) send('task', JSON.parse(kv.value));
  const endDoc = JSON.parse(endKv.value) as { state: string };
  await drain();
  if (o.isEnd(endDoc)) {
    send('end', endDoc);
    return;
  }
  const prefixes = [o.logPrefix, o.endKey, ...(o.taskPrefix && o.taskPrefix !== o.endKey ? [o.taskPrefix] : [])];
  for await (const { src, ev } of mergedWatch(store, prefixes, rev0 + 1, signal)) {
    if (ev.type !== 'put') continue;
    if (src === 0) emit(ev);
    else {
      const doc = JSON.parse(ev.value) as { state: string };
      if (src === 1 && ev.key === o.endKey) {
        if (o.taskPrefix === undefined) send('task', doc);
        if (o.isEnd(doc)) {
          await drain();
          send('end', doc);
          return;
        }
      } else if (src === 2) send('task', doc);
    }
  }
}
