/**
 * The `exec` driver: runs a task as a plain process group on the device, under a supervisor,
 * inside its own cgroup v2 with CPU/memory limits where the agent may create one.
 */
import { createTaskCgroup, detectCgroupV2, type CgroupOptions, type CgroupSupport } from './cgroup.js';
import { launchSupervised, prepareWorkDir, reattachSupervised, startFailedTask, type SupervisedOptions } from './supervised.js';
import { buildTaskEnv, resolveExecutable, validateSpec } from './task-env.js';
import type { LimitsStatus, ReattachResult, RunningTask, TaskDriver, TaskRunSpec } from './types.js';

export interface ExecDriverOptions extends SupervisedOptions {
  /**
   * cgroup v2 use: `false` never (tasks run unlimited, reported as such); otherwise detection
   * options, e.g. `{ parent: '/sys/fs/cgroup/nexus.slice' }` for a delegated subtree.
   * @default {} (detect, in the agent's own cgroup)
   */
  cgroup?: false | CgroupOptions;
  /** Where the allow-listed variables (PATH, HOME, ...) come from. @default process.env */
  baseEnv?: NodeJS.ProcessEnv;
}

export class ExecDriver implements TaskDriver {
  readonly name = 'exec';
  private support?: Promise<CgroupSupport>;

  constructor(private readonly options: ExecDriverOptions = {}) {}

  async available(): Promise<{ ok: boolean; reason?: string }> {
    if (process.platform === 'win32') return { ok: false, reason: 'the exec driver needs POSIX process groups (not Windows)' };
    return { ok: true };
  }

  /** Detected once per driver and cached: detection may create (and remove) a probe cgroup. */
  cgroupSupport(): Promise<CgroupSupport> {
    if (this.options.cgroup === false) return Promise.resolve({ enforced: false, reason: 'cgroup limits are turned off in the agent configuration' });
    this.support ??= detectCgroupV2(this.options.cgroup ?? {}).catch((err) => ({ enforced: false as const, reason: `cgroup detection failed: ${(err as Error).message}` }));
    return this.support;
  }

  async limits(): Promise<LimitsStatus> {
    const s = await this.cgroupSupport();
    return s.enforced ? { enforced: true, mechanism: 'cgroup-v2', reason: `task cgroups are created under ${s.parent}` } : { enforced: false, reason: s.reason };
  }

  async start(spec: TaskRunSpec): Promise<RunningTask> {
    const invalid = validateSpec(spec);
    if (invalid) return startFailedTask(String(spec?.taskId), undefined, invalid);
    const prepared = await prepareWorkDir(spec.workDir, spec.files);
    if ('error' in prepared) return startFailedTask(spec.taskId, undefined, prepared.error);
    const paths = prepared;

    const env = buildTaskEnv(spec, { workDir: spec.workDir, resultFile: paths.result }, this.options.baseEnv ?? process.env);
    const exe = await resolveExecutable(spec.command[0]!, env.PATH, spec.workDir);
    if ('error' in exe) return startFailedTask(spec.taskId, spec.workDir, exe.error);

    let limits: LimitsStatus;
    let cgroup: string | undefined;
    const support = await this.cgroupSupport();
    if (support.enforced) {
      const made = await createTaskCgroup(support.parent, spec.taskId, { cpuMillis: spec.cpuMillis, memoryBytes: spec.memoryBytes }, this.options.cgroup || {});
      if ('dir' in made) {
        cgroup = made.dir;
        limits = { enforced: true, mechanism: 'cgroup-v2', cgroup };
      } else {
        limits = { enforced: false, reason: made.error };
      }
    } else {
      limits = { enforced: false, reason: support.reason };
    }

    return launchSupervised(
      paths,
      {
        version: 1,
        taskId: spec.taskId,
        argv: [exe.path, ...spec.command.slice(1)],
        env,
        cwd: spec.workDir,
        ...(cgroup ? { cgroup } : {}),
        ...(spec.timeoutSeconds !== undefined ? { timeoutMs: Math.round(spec.timeoutSeconds * 1000) } : {}),
        graceMs: this.options.graceMs ?? 10_000,
        resultFile: paths.result,
      },
      limits,
      this.options,
    );
  }

  reattach(taskId: string, workDir: string): Promise<ReattachResult> {
    return reattachSupervised(taskId, workDir, this.options);
  }
}

export function createExecDriver(options: ExecDriverOptions = {}): ExecDriver {
  return new ExecDriver(options);
}
