/**
 * The `podman` driver: runs a task as `podman run --rm --name nexus-<taskId> ... <image> <command>`
 * under the same supervisor as exec, so logs, timeouts, cancel and reattach work the same way.
 * Stopping goes through `podman stop` (our signals cannot reach into the container's own process
 * tree), and podman applies the CPU/memory limits itself.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchSupervised, prepareWorkDir, reattachSupervised, startFailedTask, type SupervisedOptions } from './supervised.js';
import { nexusEnv, resolveExecutable, toolingEnv, validateSpec } from './task-env.js';
import type { LimitsStatus, ReattachResult, RunningTask, TaskDriver, TaskRunSpec } from './types.js';

/** Where the task's work dir appears inside the container. */
export const CONTAINER_WORK_DIR = '/nexus/work';

export interface PodmanDriverOptions extends SupervisedOptions {
  /** The podman binary. @default 'podman' (looked up in PATH) */
  podman?: string;
  /** Run `--init` (catatonit as PID 1: forwards signals, reaps zombies). @default true */
  init?: boolean;
  /** Extra `podman run` flags, placed before the image (e.g. ['--network=none']). */
  extraRunArgs?: string[];
}

export function containerName(taskId: string): string {
  return `nexus-${taskId}`;
}

/** Variables inside the container: spec.env < NEXUS_* (container paths) < GPU selection. */
export function containerEnv(spec: TaskRunSpec): Record<string, string> {
  const env: Record<string, string> = {
    ...spec.env,
    ...nexusEnv(spec, { workDir: CONTAINER_WORK_DIR, resultFile: `${CONTAINER_WORK_DIR}/.nexus/result` }),
  };
  // nvidia: CDI puts only the assigned GPUs in the container, so no index variable is needed
  // (inside they are renumbered from 0). amd/intel: /dev/dri carries every GPU, so select by index.
  if (spec.gpus?.vendor === 'amd') env.ROCR_VISIBLE_DEVICES = spec.gpus.indices.join(',');
  if (spec.gpus?.vendor === 'intel') env.ZE_AFFINITY_MASK = spec.gpus.indices.join(',');
  return env;
}

/** Millicores as podman's `--cpus` (decimal cores). */
export function cpusFlag(cpuMillis: number): string {
  return (Math.round(cpuMillis) / 1000).toString();
}

/**
 * The arguments after `podman`. The environment goes in an env file (mode 0600), not on the
 * command line where `ps` would show it; values with a newline (which env files cannot hold)
 * are the exception and go as `--env`.
 */
export function podmanRunArgs(spec: TaskRunSpec, opts: { envFile: string; multilineEnv?: Record<string, string>; init?: boolean; extraRunArgs?: string[] }): string[] {
  const args = ['run', '--rm', '--replace', '--name', containerName(spec.taskId), '--label', `nexus.task-id=${spec.taskId}`];
  if (opts.init ?? true) args.push('--init');
  args.push('--workdir', CONTAINER_WORK_DIR, '--volume', `${spec.workDir}:${CONTAINER_WORK_DIR}:Z`);
  args.push('--env-file', opts.envFile);
  for (const [k, v] of Object.entries(opts.multilineEnv ?? {})) args.push('--env', `${k}=${v}`);
  if (spec.cpuMillis !== undefined) args.push('--cpus', cpusFlag(spec.cpuMillis));
  if (spec.memoryBytes !== undefined) {
    const m = `${Math.floor(spec.memoryBytes)}b`;
    args.push('--memory', m, '--memory-swap', m); // swap = memory: no swap on top
  }
  const gpus = spec.gpus;
  if (gpus && gpus.indices.length > 0) {
    if (gpus.vendor === 'nvidia') for (const i of gpus.indices) args.push('--device', `nvidia.com/gpu=${i}`);
    else if (gpus.vendor === 'amd') args.push('--device', '/dev/kfd', '--device', '/dev/dri');
    else if (gpus.vendor === 'intel') args.push('--device', '/dev/dri');
  }
  args.push(...(opts.extraRunArgs ?? []));
  args.push(spec.image!, ...spec.command);
  return args;
}

/** Splits env into env-file lines and the values an env file cannot carry. */
export function envFileContent(env: Record<string, string>): { content: string; multiline: Record<string, string> } {
  const lines: string[] = [];
  const multiline: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (/[\r\n]/.test(v)) multiline[k] = v;
    else lines.push(`${k}=${v}`);
  }
  return { content: lines.length ? `${lines.join('\n')}\n` : '', multiline };
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { code?: string | number }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        stdout: String(stdout ?? ''),
        stderr: String(stderr ?? ''),
        ...(e ? { error: e } : {}),
      });
    });
  });
}

export class PodmanDriver implements TaskDriver {
  readonly name = 'podman';
  private availability?: Promise<{ ok: boolean; reason?: string; path?: string }>;
  private limitSupport?: Promise<LimitsStatus>;

  constructor(private readonly options: PodmanDriverOptions = {}) {}

  private probe(): Promise<{ ok: boolean; reason?: string; path?: string }> {
    this.availability ??= (async () => {
      const bin = this.options.podman ?? 'podman';
      const found = await resolveExecutable(bin, process.env.PATH, process.cwd());
      if ('error' in found) {
        return { ok: false, reason: found.error.startsWith('command not found') ? `podman is not installed (${bin} not found on PATH)` : `podman is not usable: ${found.error}` };
      }
      const v = await run(found.path, ['--version']);
      if (v.code !== 0) return { ok: false, reason: `\`${found.path} --version\` failed: ${(v.stderr || v.error?.message || '').trim()}` };
      return { ok: true, path: found.path };
    })();
    return this.availability;
  }

  async available(): Promise<{ ok: boolean; reason?: string }> {
    const a = await this.probe();
    return a.ok ? { ok: true } : { ok: false, ...(a.reason ? { reason: a.reason } : {}) };
  }

  /** Asks podman whether its cgroup manager can apply cpu/memory limits (rootless needs v2 delegation). */
  limits(): Promise<LimitsStatus> {
    this.limitSupport ??= (async (): Promise<LimitsStatus> => {
      const a = await this.probe();
      if (!a.ok || !a.path) return { enforced: false, reason: a.reason ?? 'podman unavailable' };
      const info = await run(a.path, ['info', '--format', 'json'], 20_000);
      if (info.code !== 0) return { enforced: false, reason: `podman info failed: ${info.stderr.trim()}` };
      try {
        const host = (JSON.parse(info.stdout) as { host?: { cgroupVersion?: string; cgroupControllers?: string[] } }).host ?? {};
        const ctl = host.cgroupControllers ?? [];
        const missing = ['cpu', 'memory'].filter((c) => !ctl.includes(c));
        if (missing.length) return { enforced: false, mechanism: 'podman', reason: `podman cannot limit ${missing.join(', ')} (cgroup ${host.cgroupVersion ?? '?'}, controllers: ${ctl.join(' ') || 'none'})` };
        return { enforced: true, mechanism: 'podman' };
      } catch {
        return { enforced: false, reason: 'cannot parse `podman info` output' };
      }
    })();
    return this.limitSupport;
  }

  async start(spec: TaskRunSpec): Promise<RunningTask> {
    const invalid = validateSpec(spec);
    if (invalid) return startFailedTask(String(spec?.taskId), undefined, invalid);
    if (!spec.image) return startFailedTask(spec.taskId, undefined, 'the podman driver needs spec.image');
    const a = await this.probe();
    if (!a.ok || !a.path) return startFailedTask(spec.taskId, undefined, a.reason ?? 'podman unavailable');
    const prepared = await prepareWorkDir(spec.workDir, spec.files);
    if ('error' in prepared) return startFailedTask(spec.taskId, undefined, prepared.error);
    const paths = prepared;

    const envFile = join(paths.book, 'container.env');
    const { content, multiline } = envFileContent(containerEnv(spec));
    await writeFile(envFile, content, { mode: 0o600 });
    const limits = await this.limits();
    const graceMs = this.options.graceMs ?? 10_000;
    return launchSupervised(
      paths,
      {
        version: 1,
        taskId: spec.taskId,
        argv: [a.path, ...podmanRunArgs(spec, { envFile, multilineEnv: multiline, init: this.options.init, extraRunArgs: this.options.extraRunArgs })],
        env: toolingEnv(),
        cwd: spec.workDir,
        ...(spec.timeoutSeconds !== undefined ? { timeoutMs: Math.round(spec.timeoutSeconds * 1000) } : {}),
        graceMs,
        stopCommand: [a.path, 'stop', '--time', String(Math.max(1, Math.ceil(graceMs / 1000))), containerName(spec.taskId)],
        // podman's own failures: 125 (podman), 126 (cannot invoke), 127 (not found in the image)
        startFailedExitCodes: [125, 126, 127],
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

export function createPodmanDriver(options: PodmanDriverOptions = {}): PodmanDriver {
  return new PodmanDriver(options);
}
