/**
 * The task-driver contract: how the agent starts one task on its device, watches it, stops it,
 * and finds it again after the agent itself restarted. See docs/adr/008-task-drivers.md.
 */

/** GPU vendors a driver knows how to expose to a task. */
export type GpuVendor = 'nvidia' | 'amd' | 'intel' | 'apple';

/** What to run. Everything a driver needs is here; the driver owns `workDir`. */
export interface TaskRunSpec {
  /** Unique on this device; `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}` (it names cgroups and containers). */
  taskId: string;
  /** argv; `command[0]` is looked up in the task's PATH (or taken as a path when it has a `/`). */
  command: string[];
  /**
   * Task environment. The driver adds its own variables on top (they win): `NEXUS_TASK_ID`,
   * `NEXUS_SHARD_INDEX`, `NEXUS_SHARD_COUNT`, `NEXUS_WORK_DIR`, `NEXUS_RESULT_FILE` and the GPU
   * visibility variables. The exec driver starts from a small allow-list of the agent's own
   * environment (PATH, HOME, LANG, ...), never the whole of it: the agent's token must not leak.
   */
  env: Record<string, string>;
  /**
   * Per-task directory; the driver creates it. The task runs with it as its working directory;
   * the driver keeps its own bookkeeping (logs, pid/exit files) under `<workDir>/.nexus/`.
   */
  workDir: string;
  /** Files written under `workDir` before the task starts; keys are relative paths inside it. */
  files?: Record<string, string | Uint8Array>;
  /** Container image (podman driver; ignored by exec). */
  image?: string;
  /** CPU limit in millicores (1000 = one core). */
  cpuMillis?: number;
  /** Memory limit in bytes (swap is not granted on top). */
  memoryBytes?: number;
  /** GPUs assigned by the scheduler, by the vendor tool's index (nvidia-smi / rocm-smi). */
  gpus?: { vendor: GpuVendor; indices: number[] };
  /** Wall-clock limit; fractions allowed. Enforced by the task's supervisor, so it holds while the agent is down. */
  timeoutSeconds?: number;
  /** Which shard of a split job this task is. @default { index: 0, count: 1 } */
  shard?: { index: number; count: number };
}

/** One chunk of task output, as it was read from the task's log files. */
export interface LogChunk {
  stream: 'stdout' | 'stderr';
  data: string;
  /** when the driver read it, epoch milliseconds */
  ts: number;
}

/**
 * Why a task ended.
 * - `exited`: the process ended on its own (any exit code, or a signal nobody in NEXUS sent).
 * - `timeout`: `timeoutSeconds` passed and the driver stopped it.
 * - `cancelled`: `cancel()` stopped it.
 * - `oom`: the kernel killed it for exceeding its memory limit (cgroup `memory.events` oom_kill).
 * - `start-failed`: it never ran (bad spec, command not found, could not join its cgroup, ...).
 * - `lost`: its supervisor died and its exit status could not be recorded; `exitCode` is null.
 */
export type TaskExitReason = 'exited' | 'timeout' | 'cancelled' | 'oom' | 'start-failed' | 'lost';

export interface TaskExit {
  /** null when the process was killed by a signal, never started, or was lost */
  exitCode: number | null;
  /** e.g. 'SIGKILL' when a signal ended it */
  signal?: string;
  reason: TaskExitReason;
  /** wall-clock time from start to exit */
  durationMs: number;
  /** the task's result: `NEXUS_RESULT_FILE` when the task wrote it, else its stdout log */
  resultPath?: string;
  /** human-readable detail: why it failed to start, the cancel reason, ... */
  message?: string;
}

/** Whether a task's CPU/memory limits are really enforced, and if not, why not. */
export interface LimitsStatus {
  enforced: boolean;
  /** why limits are not enforced (or a note on how they are) */
  reason?: string;
  /** how they are enforced: 'cgroup-v2' (exec) or 'podman' */
  mechanism?: 'cgroup-v2' | 'podman';
  /** the task's cgroup directory, when the exec driver made one */
  cgroup?: string;
}

export interface RunningTask {
  readonly taskId: string;
  /** The task's main process (its process group has the same id); undefined if it never started. */
  readonly pid?: number;
  readonly limits: LimitsStatus;
  /**
   * The task's output, live. Every iteration starts from the beginning of the captured logs and
   * ends once the task has ended and its logs are drained. Order is kept within each stream;
   * between stdout and stderr it is only as good as the read timing (they are two files).
   */
  readonly logs: AsyncIterable<LogChunk>;
  /** Resolves once the task has ended; never rejects. */
  wait(): Promise<TaskExit>;
  /**
   * Stops the task: SIGTERM to its whole process group, SIGKILL after the driver's grace period.
   * Resolves once it has ended. A task that already ended keeps its original exit.
   */
  cancel(reason: string): Promise<void>;
}

/** What `reattach` found in a work dir. */
export type ReattachResult =
  | { status: 'running'; task: RunningTask }
  | { status: 'finished'; task: RunningTask; exit: TaskExit }
  | { status: 'not-found'; reason: string };

export interface TaskDriver {
  readonly name: string;
  /** Whether this driver can run tasks on this device; a reason when not. Never throws. */
  available(): Promise<{ ok: boolean; reason?: string }>;
  /** Whether CPU/memory limits would be enforced for tasks, and why not. Never throws. */
  limits(): Promise<LimitsStatus>;
  /**
   * Starts a task. Never throws for a bad spec or a command that cannot start: the returned task's
   * `wait()` then resolves with reason `start-failed` and a message.
   */
  start(spec: TaskRunSpec): Promise<RunningTask>;
  /**
   * Finds a task started earlier (possibly by another agent process) from the state it left in
   * `workDir`: still running (the pid is alive AND has the recorded start time), or finished with
   * the exit its supervisor recorded.
   */
  reattach(taskId: string, workDir: string): Promise<ReattachResult>;
}
