/**
 * The driver side of a supervised task: prepares the work dir, launches `supervisor.js`, and
 * turns the files it leaves in `<workDir>/.nexus/` into a RunningTask (live logs, wait, cancel).
 * Both drivers (exec, podman) are this plus how they build the command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { killCgroup, removeCgroup } from './cgroup.js';
import { isSameProcess, killGroup, killPid, sleep } from './proc.js';
import {
  readJson, taskPaths, writeJsonAtomic, WARM_UNUSED_EXIT,
  type CancelRecord, type ExitRecord, type LaunchSpec, type SupervisorState, type TaskPaths,
} from './protocol.js';
import { materializeFiles, toolingEnv } from './task-env.js';
import type { LimitsStatus, LogChunk, ReattachResult, RunningTask, TaskExit } from './types.js';

export interface SupervisedOptions {
  /** SIGTERM → SIGKILL grace on timeout and cancel, in ms. @default 10000 */
  graceMs?: number;
  /** How long start() waits for the supervisor to report the task's pid. @default 15000 */
  startTimeoutMs?: number;
  /** Fallback poll interval for logs and exit (file-change events wake it sooner). @default 250 */
  pollMs?: number;
  /**
   * Supervisors kept started ahead of need (per agent process), so node's own start-up (~40-150 ms
   * of CPU and wall time) is off a task's critical path; 0 starts each one when its task starts.
   * A warm supervisor is handed its work dir on stdin and exits by itself when the agent goes away
   * (EOF) or after 10 idle minutes. @default 1
   */
  warmSupervisors?: number;
}

/** The supervisor entry script, beside this module in dist/. */
export const SUPERVISOR_SCRIPT = fileURLToPath(new URL('./supervisor.js', import.meta.url));

/** Extra launch fields kept for reattach (the supervisor ignores them). */
export interface StoredLaunch extends LaunchSpec {
  limits?: LimitsStatus;
}

/**
 * Wakes on any change in a directory (inotify via fs.watch) or after a timeout, whichever is
 * first. The watcher never keeps the process alive; the timeout does while someone waits.
 */
class DirWaker {
  private watcher?: FSWatcher;
  private waiters = new Set<() => void>();

  constructor(dir: string) {
    try {
      this.watcher = watch(dir, () => this.wake());
      this.watcher.on('error', () => this.close());
      this.watcher.unref();
    } catch {
      /* polling only */
    }
  }

  wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.wake();
  }
}

const stripExit = (rec: ExitRecord): TaskExit => {
  const { finishedAt: _ignored, ...exit } = rec;
  return exit;
};

interface StreamTail {
  stream: LogChunk['stream'];
  path: string;
  pos: number;
  decoder: StringDecoder;
  fh?: FileHandle;
}

async function* drain(s: StreamTail): AsyncGenerator<LogChunk> {
  if (!s.fh) {
    try {
      s.fh = await open(s.path, 'r');
    } catch {
      return; // not there (yet, or ever: a start failure)
    }
  }
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const { bytesRead } = await s.fh.read(buf, 0, buf.length, s.pos);
    if (bytesRead === 0) return;
    s.pos += bytesRead;
    const data = s.decoder.write(buf.subarray(0, bytesRead));
    if (data) yield { stream: s.stream, data, ts: Date.now() };
  }
}

/** A task the driver launched or reattached to, seen through its bookkeeping files. */
export class SupervisedTask implements RunningTask {
  readonly pid?: number;
  readonly logs: AsyncIterable<LogChunk>;
  private final?: TaskExit;
  private exitPromise?: Promise<TaskExit>;
  private cancelRequested?: string;
  private readonly pollMs: number;
  private readonly graceMs: number;

  constructor(
    readonly taskId: string,
    private readonly paths: TaskPaths,
    private readonly state: SupervisorState | undefined,
    readonly limits: LimitsStatus,
    options: SupervisedOptions,
    private readonly child?: ChildProcess,
    known?: TaskExit,
  ) {
    this.pid = state?.task.pid;
    this.pollMs = options.pollMs ?? 250;
    this.graceMs = state?.graceMs ?? options.graceMs ?? 10_000;
    this.final = known;
    this.logs = { [Symbol.asyncIterator]: () => this.tail() };
  }

  /** One look at the task: its exit when it has ended, undefined while it runs. */
  async check(): Promise<TaskExit | undefined> {
    if (this.final) return this.final;
    const rec = await readJson<ExitRecord>(this.paths.exit);
    if (rec) return (this.final = stripExit(rec));
    const state = this.state;
    if (!state) {
      return (this.final = { exitCode: null, reason: 'lost', durationMs: 0, message: `no state recorded in ${this.paths.book}` });
    }
    if (await isSameProcess(state.supervisor)) return undefined;
    // The supervisor is gone. It may have written exit.json just before leaving.
    const again = await readJson<ExitRecord>(this.paths.exit);
    if (again) return (this.final = stripExit(again));
    if (await isSameProcess(state.task)) return undefined; // orphaned, still running
    // a cancel asked for by this handle, or by an earlier agent before it went away
    this.cancelRequested ??= (await readJson<CancelRecord>(this.paths.cancel))?.reason;
    const exit: TaskExit = {
      exitCode: null,
      reason: this.cancelRequested !== undefined ? 'cancelled' : 'lost',
      durationMs: Math.max(0, Date.now() - state.startedAt),
      resultPath: existsSync(this.paths.result) ? this.paths.result : this.paths.stdout,
      message:
        this.cancelRequested !== undefined
          ? `cancelled: ${this.cancelRequested}`
          : "the task's supervisor died before the task ended; its exit status is unknown",
    };
    if (state.cgroup) await removeCgroup(state.cgroup);
    await writeJsonAtomic(this.paths.exit, { ...exit, finishedAt: Date.now() } satisfies ExitRecord).catch(() => {});
    return (this.final = exit);
  }

  wait(): Promise<TaskExit> {
    this.exitPromise ??= this.watchExit();
    return this.exitPromise;
  }

  private async watchExit(): Promise<TaskExit> {
    if (this.final) return this.final;
    const waker = new DirWaker(this.paths.book);
    const onExit = () => waker.wake();
    this.child?.once('exit', onExit);
    try {
      for (;;) {
        const exit = await this.check().catch(() => undefined);
        if (exit) return exit;
        await waker.next(this.pollMs);
      }
    } finally {
      this.child?.off('exit', onExit);
      waker.close();
    }
  }

  private async *tail(): AsyncGenerator<LogChunk> {
    const streams: StreamTail[] = [
      { stream: 'stdout', path: this.paths.stdout, pos: 0, decoder: new StringDecoder('utf8') },
      { stream: 'stderr', path: this.paths.stderr, pos: 0, decoder: new StringDecoder('utf8') },
    ];
    const waker = existsSync(this.paths.book) ? new DirWaker(this.paths.book) : undefined;
    try {
      for (;;) {
        // look for the end first: whatever was written before it is then surely in the files
        const ended = await this.check().catch(() => undefined);
        for (const s of streams) yield* drain(s);
        if (ended) {
          for (const s of streams) {
            const rest = s.decoder.end();
            if (rest) yield { stream: s.stream, data: rest, ts: Date.now() };
          }
          return;
        }
        await (waker ? waker.next(this.pollMs) : sleep(this.pollMs));
      }
    } finally {
      waker?.close();
      for (const s of streams) await s.fh?.close().catch(() => {});
    }
  }

  async cancel(reason: string): Promise<void> {
    if (await this.check().catch(() => undefined)) return;
    const state = this.state;
    if (!state) return;
    this.cancelRequested = reason;
    await writeJsonAtomic(this.paths.cancel, { reason, at: Date.now() } satisfies CancelRecord);
    if (await isSameProcess(state.supervisor)) {
      killPid(state.supervisor.pid, 'SIGTERM'); // the supervisor stops the group and records the exit
    } else if (await isSameProcess(state.task)) {
      await this.stopOrphan(state);
    }
    await this.wait();
  }

  /** The supervisor is gone but the task is not: stop its group ourselves. */
  private async stopOrphan(state: SupervisorState): Promise<void> {
    let grace = this.graceMs;
    if (state.stopCommand?.length) {
      const stop = spawn(state.stopCommand[0]!, state.stopCommand.slice(1), { stdio: 'ignore' });
      stop.on('error', () => {});
      grace += 10_000;
    } else {
      killGroup(state.task.pid, 'SIGTERM');
    }
    const deadline = Date.now() + grace;
    while (Date.now() < deadline && (await isSameProcess(state.task))) await sleep(50);
    if (await isSameProcess(state.task)) killGroup(state.task.pid, 'SIGKILL');
    if (state.cgroup) await killCgroup(state.cgroup);
    while (await isSameProcess(state.task)) await sleep(20);
  }
}

/** A task that never got as far as a supervisor. Its exit is also written to exit.json when possible. */
export async function startFailedTask(taskId: string, workDir: string | undefined, message: string, limits?: LimitsStatus): Promise<RunningTask> {
  const exit: TaskExit = { exitCode: null, reason: 'start-failed', durationMs: 0, message };
  const paths = taskPaths(typeof workDir === 'string' && workDir ? workDir : '/nonexistent');
  if (workDir && existsSync(paths.book)) {
    await writeJsonAtomic(paths.exit, { ...exit, finishedAt: Date.now() } satisfies ExitRecord).catch(() => {});
  }
  return new SupervisedTask(taskId, paths, undefined, limits ?? { enforced: false, reason: 'the task did not start' }, {}, undefined, exit);
}

/**
 * Creates the work dir and its bookkeeping dir, refuses when a task is still running there, clears
 * what an earlier run left, and writes `spec.files`. Returns the paths or why it could not.
 */
export async function prepareWorkDir(workDir: string, files: Record<string, string | Uint8Array> | undefined): Promise<TaskPaths | { error: string }> {
  const paths = taskPaths(workDir);
  try {
    // A bookkeeping dir made just now holds nothing of an earlier run: no check, nothing to clear.
    if ((await mkdir(paths.book, { recursive: true, mode: 0o700 })) === undefined) {
      const prev = await readJson<SupervisorState>(paths.state);
      if (prev && !existsSync(paths.exit) && ((await isSameProcess(prev.supervisor)) || (await isSameProcess(prev.task)))) {
        return { error: `a task (pid ${prev.task.pid}) is still running in ${workDir}` };
      }
      for (const p of [paths.state, paths.exit, paths.cancel, paths.launch, paths.result, paths.joinFailed, paths.stdout, paths.stderr, paths.supervisorLog]) {
        await rm(p, { force: true });
      }
    }
    await writeFile(paths.stdout, '');
    await writeFile(paths.stderr, '');
    await materializeFiles(workDir, files);
    return paths;
  } catch (err) {
    return { error: `cannot prepare work dir ${workDir}: ${(err as Error).message}` };
  }
}

async function tailOf(path: string, max = 2000): Promise<string> {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    return t.length > max ? `…${t.slice(-max)}` : t;
  } catch {
    return '';
  }
}

/** How long a warm supervisor waits for its task before it exits by itself. */
const WARM_IDLE_MS = 10 * 60_000;
const warmPool: { child: ChildProcess; bornAt: number }[] = [];
let refillTimer: NodeJS.Timeout | undefined;

/** Starts a supervisor that waits (node started, modules loaded) for a work dir on its stdin. */
function startWarm(): boolean {
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [SUPERVISOR_SCRIPT, '--warm', String(WARM_IDLE_MS)], {
      cwd: '/',
      env: toolingEnv(),
      stdio: ['pipe', 'ignore', 'ignore'], // it logs to the task's supervisor.log once it has one
      detached: true,
    });
  } catch {
    return false;
  }
  child.on('error', () => {});
  child.stdin?.on('error', () => {});
  child.unref();
  (child.stdin as { unref?: () => void } | null)?.unref?.(); // an idle warm supervisor never keeps the agent alive
  const w = { child, bornAt: Date.now() };
  warmPool.push(w);
  child.once('exit', () => {
    const i = warmPool.indexOf(w);
    if (i >= 0) warmPool.splice(i, 1);
  });
  return true;
}

/** A live warm supervisor not about to time out, or undefined. */
function takeWarm(): ChildProcess | undefined {
  while (warmPool.length > 0) {
    const w = warmPool.shift()!;
    if (w.child.exitCode === null && w.child.signalCode === null && Date.now() - w.bornAt < WARM_IDLE_MS - 60_000) return w.child;
    w.child.stdin?.destroy(); // EOF: it exits
  }
  return undefined;
}

/** Tops the pool up a little later, off the critical path of the task that just took one. */
function refillLater(size: number): void {
  if (size <= 0 || refillTimer || warmPool.length >= size) return;
  refillTimer = setTimeout(() => {
    refillTimer = undefined;
    while (warmPool.length < size && startWarm());
  }, 25);
  refillTimer.unref();
}

/**
 * Writes launch.json, starts the supervisor in its own session (or hands the work dir to a warm
 * one), and waits until it reports the task's pid (state.json) or its failure to start (exit.json).
 */
export async function launchSupervised(paths: TaskPaths, launch: StoredLaunch, limits: LimitsStatus, options: SupervisedOptions = {}): Promise<RunningTask> {
  await writeJsonAtomic(paths.launch, { ...launch, limits } satisfies StoredLaunch, 0o600);
  const coldStart = (): ChildProcess | Error => {
    const log = openSync(paths.supervisorLog, 'a');
    try {
      return spawn(process.execPath, [SUPERVISOR_SCRIPT, paths.workDir], {
        cwd: paths.workDir,
        env: toolingEnv(), // it needs PATH etc. only for stop commands
        stdio: ['ignore', log, log],
        detached: true,
      });
    } catch (err) {
      return err as Error;
    } finally {
      closeSync(log);
    }
  };
  const warmWanted = options.warmSupervisors ?? 1;
  let child: ChildProcess | Error | undefined = warmWanted > 0 ? takeWarm() : undefined;
  let warm = child !== undefined;
  if (child) child.stdin!.end(`${paths.workDir}\n`);
  else child = coldStart();
  refillLater(warmWanted);
  if (child instanceof Error) return startFailedTask(launch.taskId, paths.workDir, `cannot start the task supervisor: ${child.message}`, limits);
  child.on('error', () => {}); // reported through exit below
  child.unref();

  let supervisorGone = false;
  let unused = false;
  const waker = new DirWaker(paths.book);
  const onExit = (code: number | null) => {
    supervisorGone = true;
    unused = code === WARM_UNUSED_EXIT;
    waker.wake();
  };
  child.once('exit', onExit);
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  try {
    for (;;) {
      const state = await readJson<SupervisorState>(paths.state);
      if (state) return new SupervisedTask(launch.taskId, paths, state, limits, options, child);
      const exit = await readJson<ExitRecord>(paths.exit);
      // A quick task may have ended between the two reads: state.json is written before exit.json.
      if (exit) return new SupervisedTask(launch.taskId, paths, await readJson<SupervisorState>(paths.state), limits, options, child, stripExit(exit));
      if (supervisorGone && warm && unused) {
        // The warm one left without taking the task (it timed out just then): start one now.
        warm = false;
        const again = coldStart();
        if (again instanceof Error) return startFailedTask(launch.taskId, paths.workDir, `cannot start the task supervisor: ${again.message}`, limits);
        child = again;
        child.on('error', () => {});
        child.unref();
        supervisorGone = false;
        child.once('exit', onExit);
        continue;
      }
      if (supervisorGone || Date.now() > deadline) {
        const state2 = await readJson<SupervisorState>(paths.state);
        if (state2) return new SupervisedTask(launch.taskId, paths, state2, limits, options, child);
        const exit2 = await readJson<ExitRecord>(paths.exit);
        if (exit2) return new SupervisedTask(launch.taskId, paths, undefined, limits, options, child, stripExit(exit2));
        if (!supervisorGone && child.pid) killPid(child.pid, 'SIGKILL');
        const why = supervisorGone ? 'the task supervisor exited without starting the task' : 'the task supervisor did not report in time';
        const detail = await tailOf(paths.supervisorLog);
        if (launch.cgroup) await removeCgroup(launch.cgroup);
        return startFailedTask(launch.taskId, paths.workDir, detail ? `${why}: ${detail}` : why, limits);
      }
      await waker.next(50);
    }
  } finally {
    waker.close();
  }
}

/** Finds a task from what its supervisor left in `workDir`. */
export async function reattachSupervised(taskId: string, workDir: string, options: SupervisedOptions = {}): Promise<ReattachResult> {
  const paths = taskPaths(workDir);
  if (!existsSync(paths.book)) return { status: 'not-found', reason: `no task bookkeeping in ${workDir}` };
  const launch = await readJson<StoredLaunch>(paths.launch);
  const state = await readJson<SupervisorState>(paths.state);
  const exit = await readJson<ExitRecord>(paths.exit);
  const recorded = state?.taskId ?? launch?.taskId;
  if (recorded !== undefined && recorded !== taskId) return { status: 'not-found', reason: `${workDir} belongs to task ${recorded}, not ${taskId}` };
  if (!state && !exit) return { status: 'not-found', reason: `no pid or exit recorded in ${paths.book}` };
  const limits = launch?.limits ?? { enforced: false, reason: 'unknown (not recorded at launch)' };
  const task = new SupervisedTask(taskId, paths, state, limits, options, undefined, exit ? stripExit(exit) : undefined);
  const ended = await task.check();
  return ended ? { status: 'finished', task, exit: ended } : { status: 'running', task };
}
