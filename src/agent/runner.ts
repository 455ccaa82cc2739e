/**
 * The agent's task runner: watches its device's assignments (GET /v1/devices/:id/assignments, a
 * server-sent event stream), starts each assigned task with its driver, reports `running`, ships
 * the output in batches, reports how it ended (with its result), and kills a task as soon as it
 * leaves the device (cancelled, preempted, declared lost, moved off a dead device).
 *
 * Tasks outlive the agent: each runs under the driver's supervisor in
 * `<dataDir>/tasks/<taskId>.<attempt>.<run>/`, next to a small `<same>.json` of the runner's own
 * (which driver, how much output was shipped). After a restart the runner reattaches to what it
 * finds there, ships the rest of the output and reports the exit; a task the server believes runs
 * here but that left no trace is reported `lost`.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NexusClient } from '../client/client.js';
import type { AssignmentMessage, RunSpec, TaskDoc, TaskStatusReport } from '../compute/types.js';
import { createDrivers } from './drivers/index.js';
import { safeRelPath } from './drivers/task-env.js';
import type { RunningTask, TaskDriver, TaskExit } from './drivers/types.js';
import { describeExit, readResult, shipLogs, type LogShipping } from './runner-output.js';
import { MOVED, RETRYABLE, runIdOf, runName, type LocalRun, type RunRecord } from './runs.js';

export interface TaskRunnerOptions {
  client: NexusClient;
  deviceId: string;
  /** The agent's data dir; tasks run under `<dataDir>/tasks/`. */
  dataDir: string;
  /** Drivers by name. @default createDrivers() (exec, and podman where it is installed) */
  drivers?: Partial<Record<'exec' | 'podman', TaskDriver>>;
  onError?: (err: unknown) => void;
  /** Ship output at least this often while a task writes. @default 250 */
  logBatchMs?: number;
  /** …or once this much is buffered. @default 65536 */
  logBatchBytes?: number;
  /** Output shipped per run at most; the rest stays in the work dir. @default 8 MiB */
  logLimitBytes?: number;
  /** Largest result shipped. @default 1 MiB */
  resultLimitBytes?: number;
  /** Keep work dirs of finished tasks (debugging). @default false */
  keepWorkDirs?: boolean;
  /** Wait before reconnecting a broken assignment stream (doubles up to 30 s). @default 500 */
  reconnectMs?: number;
}

export interface TaskRunner {
  /** Runs this runner is looking after right now. */
  readonly active: number;
  /** Stops watching and shipping. Tasks keep running; a new runner reattaches to them. */
  stop(): Promise<void>;
}

export function startTaskRunner(options: TaskRunnerOptions): TaskRunner {
  const { client, deviceId } = options;
  const tasksDir = join(options.dataDir, 'tasks');
  const onError = options.onError ?? (() => {});
  const batchMs = options.logBatchMs ?? 250;
  const batchBytes = options.logBatchBytes ?? 64 * 1024;
  const logLimit = options.logLimitBytes ?? 8 * 1024 * 1024;
  const resultLimit = options.resultLimitBytes ?? 1024 * 1024;
  const abort = new AbortController();
  const runs = new Map<string, LocalRun>();
  /** Runs that ended here recently: a late `present` for them must not start them again. */
  const finished = new Map<string, number>();
  let drivers: Promise<{ drivers: Partial<Record<'exec' | 'podman', TaskDriver>>; availability: Record<string, { ok: boolean; reason?: string }> }>;
  if (options.drivers) {
    const given = options.drivers;
    drivers = (async () => {
      const availability: Record<string, { ok: boolean; reason?: string }> = {};
      for (const [k, d] of Object.entries(given)) availability[k] = d ? await d.available() : { ok: false, reason: 'not configured' };
      return { drivers: given, availability };
    })();
  } else drivers = createDrivers({ exec: { graceMs: 5000 } });

  const stopped = () => abort.signal.aborted;
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    if (abort.signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      abort.signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    abort.signal.addEventListener('abort', done, { once: true });
  });

  /** Calls `fn` until it succeeds, the error is not transient, or the runner stops. */
  async function retry<T>(fn: () => Promise<T>): Promise<T> {
    let wait = 200;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!RETRYABLE(e) || stopped()) throw e;
        onError(e);
        await sleep(wait);
        wait = Math.min(wait * 2, 10_000);
      }
    }
  }

  const recPath = (name: string) => join(tasksDir, `${name}.json`);
  const saveRec = async (rec: RunRecord, name: string) => writeFile(recPath(name), JSON.stringify(rec), { mode: 0o600 }).catch(onError);

  async function loadRec(name: string): Promise<RunRecord | undefined> {
    try {
      return JSON.parse(await readFile(recPath(name), 'utf8')) as RunRecord;
    } catch {
      return undefined;
    }
  }

  async function cleanup(name: string): Promise<void> {
    if (options.keepWorkDirs) return;
    await rm(join(tasksDir, name), { recursive: true, force: true }).catch(onError);
    await rm(recPath(name), { force: true }).catch(onError);
  }

  const logShipping: LogShipping = { client, deviceId, batchMs, batchBytes, logLimit, stopped, retry, saveRec, onError };

  async function report(run: LocalRun, body: Omit<TaskStatusReport, 'deviceId' | 'attempt'>): Promise<boolean> {
    try {
      await retry(() => client.tasks.report(run.task.id, { deviceId, attempt: run.task.attempt, ...body }));
      return true;
    } catch (e) {
      if (MOVED(e)) {
        run.gone ??= (e as Error).message;
        return false;
      }
      if (!stopped()) onError(e);
      return false;
    }
  }

  /** Runs (or reattaches to) one assignment until it ends or leaves the device. */
  async function execute(run: LocalRun): Promise<void> {
    const { task } = run;
    const { drivers: ds, availability } = await drivers;
    const workDir = join(tasksDir, run.name);
    let rt: RunningTask | undefined;
    let rec = await loadRec(run.name);
    let spec: RunSpec | undefined;
    let immediateExit: TaskExit | undefined;

    if (rec && existsSync(join(workDir, '.nexus'))) {
      const d = ds[rec.driver];
      const found = d ? await d.reattach(run.name, workDir) : { status: 'not-found' as const, reason: `driver ${rec.driver} is not available` };
      if (found.status === 'running') rt = found.task;
      else if (found.status === 'finished') {
        rt = found.task;
        immediateExit = found.exit;
      } else if (task.state === 'running') {
        await report(run, { state: 'lost', message: `the agent restarted and could not find the task: ${found.reason}` });
        return;
      }
    } else if (task.state === 'running') {
      await report(run, { state: 'lost', message: 'the agent has no record of this task (its data dir was lost or it restarted on a clean disk)' });
      return;
    }

    if (!rt) {
      // A fresh start.
      try {
        spec = await retry(() => client.tasks.runSpec(task.id, deviceId));
      } catch (e) {
        if (MOVED(e)) run.gone ??= (e as Error).message;
        else if (!stopped()) onError(e);
        return;
      }
      if (run.gone || stopped()) return;
      const avail = availability[spec.driver];
      const driver = ds[spec.driver];
      if (!driver || !avail?.ok) {
        await report(run, { state: 'failed', message: `the ${spec.driver} driver is not available on this device: ${avail?.reason ?? 'not configured'}` });
        return;
      }
      await rm(workDir, { recursive: true, force: true });
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      for (const f of spec.files) {
        const abs = safeRelPath(workDir, f.path);
        if (!abs) {
          await report(run, { state: 'failed', message: `file path ${JSON.stringify(f.path)} is not inside the work dir` });
          return;
        }
        await mkdir(dirname(abs), { recursive: true });
        await writeFile(abs, f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : f.content);
        if (f.mode !== undefined) await chmod(abs, f.mode);
      }
      const env: Record<string, string> = { ...spec.env, NEXUS_JOB_ID: spec.jobId, NEXUS_ATTEMPT: String(spec.attempt) };
      if (spec.shardResultsDir) {
        env.NEXUS_SHARD_RESULTS_DIR = join(workDir, spec.shardResultsDir);
        env.NEXUS_SHARD_COUNT_TOTAL = String(spec.shardCount);
      }
      rec = { taskId: task.id, attempt: task.attempt, run: runIdOf(task), driver: spec.driver, sent: { stdout: 0, stderr: 0 }, seq: 0, shipped: 0 };
      await saveRec(rec, run.name);
      rt = await driver.start({
        taskId: run.name,
        command: spec.command,
        env,
        workDir,
        ...(spec.image ? { image: spec.image } : {}),
        cpuMillis: spec.cpuMillis,
        memoryBytes: spec.memoryBytes,
        ...(spec.gpus ? { gpus: { vendor: spec.gpus.vendor as 'nvidia', indices: spec.gpus.indices } } : {}),
        ...(spec.timeoutSeconds ? { timeoutSeconds: spec.timeoutSeconds } : {}),
        ...(spec.shardIndex >= 0 ? { shard: { index: spec.shardIndex, count: spec.shardCount } } : {}),
      });
      run.running = rt;
      if (run.gone) await rt.cancel(run.gone);
      else if (rt.pid !== undefined && task.state === 'assigned') {
        const ok = await report(run, { state: 'running' });
        if (!ok && run.gone) await rt.cancel(run.gone);
      }
    } else {
      run.running = rt;
      if (!immediateExit && task.state === 'assigned') await report(run, { state: 'running' });
      if (run.gone) await rt.cancel(run.gone);
    }
    run.rec = rec;

    const shipping = shipLogs(logShipping, run, rt, rec!).catch(onError);
    const exit = immediateExit ?? (await rt.wait());
    await shipping;
    if (stopped()) return;
    if (run.gone) {
      await cleanup(run.name);
      return;
    }
    run.reporting = true;
    const ok = exit.reason === 'exited' && exit.exitCode === 0;
    const state = ok ? 'succeeded' : exit.reason === 'lost' ? 'lost' : 'failed';
    const message = describeExit(exit, spec);
    const result = await readResult(exit.resultPath, resultLimit).catch(() => undefined);
    await report(run, {
      state,
      ...(exit.exitCode !== null && exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      ...(message ? { message } : {}),
      ...(result ? { result } : {}),
    });
    if (!stopped()) await cleanup(run.name);
  }

  function begin(task: TaskDoc): void {
    const name = runName(task);
    if (finished.has(name)) return;
    const existing = runs.get(task.id);
    if (existing) {
      if (existing.name === name) {
        existing.task = task;
        return;
      }
      // Another run of the same task: the old one is over for the server.
      void leave(task.id, `superseded by ${name}`);
    }
    const run: LocalRun = { name, task, done: Promise.resolve() };
    runs.set(task.id, run);
    const prev = existing?.done ?? Promise.resolve();
    run.done = prev
      .then(() => execute(run))
      .catch((e) => {
        if (!stopped()) onError(e);
      })
      .finally(() => {
        if (runs.get(task.id) === run) runs.delete(task.id);
        finished.set(name, Date.now());
        if (finished.size > 1000) for (const k of [...finished.keys()].slice(0, 200)) finished.delete(k);
      });
  }

  async function leave(taskId: string, why: string): Promise<void> {
    const run = runs.get(taskId);
    if (!run) return;
    runs.delete(taskId);
    run.gone ??= why;
    finished.set(run.name, Date.now());
    await run.running?.cancel(why).catch(onError);
  }

  /** Work dirs of runs the server no longer knows about (moved off while the agent was down). */
  async function sweep(present: Set<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(tasksDir);
    } catch {
      return;
    }
    const { drivers: ds } = await drivers;
    for (const n of names) {
      if (n.endsWith('.json')) continue;
      if (present.has(n) || [...runs.values()].some((r) => r.name === n)) continue;
      const rec = await loadRec(n);
      const d = rec ? ds[rec.driver] : ds.exec;
      const found = d ? await d.reattach(n, join(tasksDir, n)).catch(() => undefined) : undefined;
      if (found?.status === 'running') await found.task.cancel('the task left this device while the agent was away').catch(onError);
      await cleanup(n);
    }
  }

  async function watchLoop(): Promise<void> {
    await mkdir(tasksDir, { recursive: true, mode: 0o700 });
    let wait = options.reconnectMs ?? 500;
    let first = true;
    while (!stopped()) {
      const present = new Set<string>();
      const snapshot = new Set<string>();
      try {
        for await (const m of client.tasks.assignments(deviceId, abort.signal)) {
          if (m.event === 'task') {
            const { type, task } = m.data as AssignmentMessage;
            if (type === 'present') {
              snapshot.add(task.id);
              present.add(runName(task));
              begin(task);
            } else {
              const run = runs.get(task.id);
              // Gone: unless it is our own final report echoing back (then the run ends by itself).
              const ours = run && run.reporting && runName(task) === run.name && ['succeeded', 'failed', 'lost'].includes(task.state);
              if (run && !ours) void leave(task.id, `the task is ${task.state}${task.message ? ` (${task.message})` : ''}`);
            }
          } else if (m.event === 'synced') {
            wait = options.reconnectMs ?? 500;
            for (const id of [...runs.keys()]) if (!snapshot.has(id)) void leave(id, 'the task is no longer assigned to this device');
            if (first) {
              first = false;
              await sweep(present);
            }
          } else if (m.event === 'error') {
            throw new Error(JSON.stringify(m.data));
          }
        }
      } catch (e) {
        if (stopped()) return;
        onError(e);
      }
      await sleep(wait);
      wait = Math.min(wait * 2, 30_000);
    }
  }

  const loop = watchLoop().catch((e) => {
    if (!stopped()) onError(e);
  });

  return {
    get active() {
      return runs.size;
    },
    async stop() {
      abort.abort();
      await loop;
    },
  };
}
