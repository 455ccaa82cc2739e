/**
 * Task drivers: how the agent runs one task on its device.
 *
 * ```ts
 * import { createExecDriver, createPodmanDriver } from './drivers/index.js';
 *
 * const exec = createExecDriver();                  // cgroup v2 limits where the host allows them
 * console.log(await exec.limits());                 // { enforced: false, reason: '...' } → report it
 * const task = await exec.start({ taskId, command: ['python', 'train.py'], env: {}, workDir,
 *                                 cpuMillis: 2000, memoryBytes: 4 << 30, timeoutSeconds: 3600,
 *                                 gpus: { vendor: 'nvidia', indices: [1] } });
 * for await (const chunk of task.logs) ship(chunk);  // live; ends when the task ends
 * const exit = await task.wait();                    // { reason, exitCode, durationMs, resultPath }
 *
 * // after the agent restarts: find every task it had started
 * const found = await exec.reattach(taskId, workDir); // running | finished | not-found
 * ```
 *
 * Contract (see `types.ts` and docs/adr/008-task-drivers.md):
 * - `start()` never throws for a bad spec or a command that cannot start; `wait()` then resolves
 *   with reason `start-failed` and a message. `wait()` never rejects.
 * - Each task runs under a small supervisor process in its own session, which owns the timeout,
 *   cancellation and the exit record (`<workDir>/.nexus/exit.json`), so a task and its exit
 *   status outlive the agent. `reattach` checks pid AND start time before it trusts a pid.
 * - Timeout and cancel stop the task's whole process group: SIGTERM, SIGKILL after `graceMs`.
 * - Task env: an allow-list of the agent's env (PATH, HOME, LANG, ...) < `spec.env` <
 *   NEXUS_TASK_ID, NEXUS_SHARD_INDEX/COUNT, NEXUS_WORK_DIR, NEXUS_RESULT_FILE and GPU selection
 *   (CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES name exactly the assigned indices; '' = none).
 * - The task's result is NEXUS_RESULT_FILE when it wrote one, else its stdout (`exit.resultPath`).
 */
export type {
  GpuVendor, LimitsStatus, LogChunk, ReattachResult, RunningTask, TaskDriver, TaskExit, TaskExitReason, TaskRunSpec,
} from './types.js';

export { ExecDriver, createExecDriver, type ExecDriverOptions } from './exec.js';
export { PodmanDriver, createPodmanDriver, containerName, podmanRunArgs, type PodmanDriverOptions, CONTAINER_WORK_DIR } from './podman.js';
export type { SupervisedOptions } from './supervised.js';
/** cgroup v2 detection, for reporting what the device allows (e.g. in its capabilities). */
export { detectCgroupV2, cpuMaxValue, type CgroupOptions, type CgroupSupport } from './cgroup.js';
export { buildTaskEnv, gpuEnv, validateSpec, INHERITED_ENV } from './task-env.js';
/** Paths of a task's bookkeeping files (`<workDir>/.nexus/...`): logs, pid state, exit record. */
export { taskPaths, type TaskPaths } from './protocol.js';

import { createExecDriver, type ExecDriverOptions } from './exec.js';
import { createPodmanDriver, type PodmanDriverOptions } from './podman.js';
import type { TaskDriver } from './types.js';

/**
 * Both drivers, keyed by name, plus which of them can run here and why not: what the agent
 * reports with its device and uses to pick a driver for each task (`spec.image` → podman).
 */
export async function createDrivers(options: { exec?: ExecDriverOptions; podman?: PodmanDriverOptions } = {}): Promise<{
  drivers: Record<'exec' | 'podman', TaskDriver>;
  availability: Record<'exec' | 'podman', { ok: boolean; reason?: string }>;
}> {
  const drivers = { exec: createExecDriver(options.exec), podman: createPodmanDriver(options.podman) };
  const [exec, podman] = await Promise.all([drivers.exec.available(), drivers.podman.available()]);
  return { drivers, availability: { exec, podman } };
}
