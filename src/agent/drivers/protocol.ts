/**
 * The files a task's supervisor and the driver share under `<workDir>/.nexus/`. They are the only
 * channel between the two, which is what lets a task outlive the agent that started it.
 *
 *   launch.json      what to run (written by the driver, mode 0600: it holds the task's env)
 *   state.json       pids + start times of the supervisor and the task (written by the supervisor)
 *   exit.json        how the task ended (written once, atomically, by the supervisor)
 *   cancel.json      why the driver asked for a stop (written before it signals the supervisor)
 *   stdout.log       the task's stdout, written by the task itself (not through a pipe)
 *   stderr.log       the task's stderr
 *   supervisor.log   the supervisor's own diagnostics
 *   result           NEXUS_RESULT_FILE
 *   cgroup-join-failed  marker written by the cgroup join shim when it could not join
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcessIdentity } from './proc.js';
import type { TaskExit } from './types.js';

export const BOOK_DIR = '.nexus';

/**
 * A warm supervisor (`supervisor.js --warm IDLE_MS`, started before its task is known) reads its
 * work dir from stdin; when it leaves without one (EOF, or idle for IDLE_MS) it exits with this.
 */
export const WARM_UNUSED_EXIT = 75;

export interface TaskPaths {
  workDir: string;
  book: string;
  launch: string;
  state: string;
  exit: string;
  cancel: string;
  stdout: string;
  stderr: string;
  supervisorLog: string;
  result: string;
  joinFailed: string;
}

export function taskPaths(workDir: string): TaskPaths {
  const book = join(workDir, BOOK_DIR);
  return {
    workDir,
    book,
    launch: join(book, 'launch.json'),
    state: join(book, 'state.json'),
    exit: join(book, 'exit.json'),
    cancel: join(book, 'cancel.json'),
    stdout: join(book, 'stdout.log'),
    stderr: join(book, 'stderr.log'),
    supervisorLog: join(book, 'supervisor.log'),
    result: join(book, 'result'),
    joinFailed: join(book, 'cgroup-join-failed'),
  };
}

/** What the supervisor runs. */
export interface LaunchSpec {
  version: 1;
  taskId: string;
  /** argv with argv[0] already resolved to an absolute path */
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** the task's cgroup dir (already created, limits written); the task joins it before exec */
  cgroup?: string;
  timeoutMs?: number;
  /** SIGTERM → SIGKILL grace */
  graceMs: number;
  /** run on timeout/cancel before signalling (podman: `podman stop`) */
  stopCommand?: string[];
  /** exit codes that mean "never started" for this driver (podman: 125) */
  startFailedExitCodes?: number[];
  /** the result file the task may write; `resultPath` falls back to stdout */
  resultFile: string;
}

export interface SupervisorState {
  version: 1;
  taskId: string;
  supervisor: ProcessIdentity;
  /** the task's main process; also its process-group id */
  task: ProcessIdentity;
  startedAt: number;
  cgroup?: string;
  stopCommand?: string[];
  graceMs: number;
}

export interface ExitRecord extends TaskExit {
  finishedAt: number;
}

export interface CancelRecord {
  reason: string;
  at: number;
}

let tmpSeq = 0;

/**
 * Write-then-rename, so a reader never sees half a file (and a crash leaves the old one or none).
 * The temp name is unique by pid + counter; no node:crypto, which would cost every task
 * supervisor several ms of start-up just to load.
 */
export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${(tmpSeq++).toString(36)}${Math.random().toString(36).slice(2, 6)}.tmp`;
  await writeFile(tmp, JSON.stringify(value), { mode });
  await rename(tmp, path);
}

/** undefined when missing or not (yet) valid JSON */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
