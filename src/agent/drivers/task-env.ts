/**
 * Pure-ish helpers shared by the drivers: spec validation, the task's environment (NEXUS_* and
 * GPU visibility), executable lookup and materialising `files` into the work dir.
 */
import { constants } from 'node:fs';
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { GpuVendor, TaskRunSpec } from './types.js';

export const TASK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ENV_NAME_RE = /^[^=\0]+$/;

/** Variables copied from the agent's own environment into an exec task's (nothing else is). */
export const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'] as const;

/**
 * What the supervisor and the podman client may take from the agent's environment: the task
 * allow-list plus what container tooling needs (runtime dir, config paths, proxies). Never tokens.
 */
export const TOOLING_ENV = [
  ...INHERITED_ENV, 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'DBUS_SESSION_BUS_ADDRESS',
  'CONTAINERS_CONF', 'CONTAINERS_REGISTRIES_CONF', 'CONTAINERS_STORAGE_CONF', 'REGISTRY_AUTH_FILE',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy',
] as const;

export function toolingEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of TOOLING_ENV) if (source[k] !== undefined) env[k] = source[k]!;
  return env;
}

/** Returns why the spec is unusable, or undefined when it is fine. */
export function validateSpec(spec: TaskRunSpec): string | undefined {
  if (typeof spec.taskId !== 'string' || !TASK_ID_RE.test(spec.taskId)) {
    return `invalid taskId ${JSON.stringify(spec.taskId)}: must match ${TASK_ID_RE}`;
  }
  if (!Array.isArray(spec.command) || spec.command.length === 0 || !spec.command[0]) return 'command is empty';
  if (spec.command.some((a) => typeof a !== 'string' || a.includes('\0'))) return 'command arguments must be strings without NUL';
  if (typeof spec.workDir !== 'string' || !isAbsolute(spec.workDir)) return `workDir must be an absolute path, got ${JSON.stringify(spec.workDir)}`;
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (!ENV_NAME_RE.test(k) || typeof v !== 'string' || v.includes('\0')) return `invalid env entry ${JSON.stringify(k)}`;
  }
  if (spec.cpuMillis !== undefined && !(Number.isFinite(spec.cpuMillis) && spec.cpuMillis > 0)) return `cpuMillis must be > 0, got ${spec.cpuMillis}`;
  if (spec.memoryBytes !== undefined && !(Number.isSafeInteger(spec.memoryBytes) && spec.memoryBytes > 0)) {
    return `memoryBytes must be a positive integer, got ${spec.memoryBytes}`;
  }
  if (spec.timeoutSeconds !== undefined && !(Number.isFinite(spec.timeoutSeconds) && spec.timeoutSeconds > 0)) {
    return `timeoutSeconds must be > 0, got ${spec.timeoutSeconds}`;
  }
  if (spec.shard) {
    const { index, count } = spec.shard;
    if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) {
      return `invalid shard ${JSON.stringify(spec.shard)}: need 0 <= index < count`;
    }
  }
  if (spec.gpus) {
    if (!['nvidia', 'amd', 'intel', 'apple'].includes(spec.gpus.vendor)) return `unknown GPU vendor ${JSON.stringify(spec.gpus.vendor)}`;
    if (!Array.isArray(spec.gpus.indices) || spec.gpus.indices.some((i) => !Number.isInteger(i) || i < 0)) {
      return `GPU indices must be non-negative integers, got ${JSON.stringify(spec.gpus.indices)}`;
    }
  }
  for (const rel of Object.keys(spec.files ?? {})) {
    if (!safeRelPath(spec.workDir, rel)) return `file path ${JSON.stringify(rel)} is not a relative path inside workDir`;
  }
  return undefined;
}

/** The absolute path for `rel` inside `root`, or undefined when it escapes it or is absolute. */
export function safeRelPath(root: string, rel: string): string | undefined {
  if (!rel || isAbsolute(rel) || rel.includes('\0')) return undefined;
  const abs = resolve(root, rel);
  const r = relative(root, abs);
  if (!r || r.startsWith('..') || isAbsolute(r) || r.split(sep)[0] === '.nexus') return undefined;
  return abs;
}

/**
 * GPU visibility for exec tasks. Each vendor variable names exactly the assigned indices; a task
 * with no GPUs of a vendor gets that vendor's variable set to the empty string, which hides all
 * of them (CUDA documents '' as "no devices"; ROCr filters as soon as the variable is set). So
 * an unassigned task cannot wander onto a GPU the scheduler gave to someone else. Intel's
 * ZE_AFFINITY_MASK treats '' as "all", so it is only set when Intel GPUs are assigned. Apple GPUs
 * are one shared device with no selection variable.
 *
 * CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number devices as nvidia-smi does (its default is
 * "fastest first"), so the scheduler's nvidia-smi indices mean the same GPUs inside the task.
 */
export function gpuEnv(gpus: TaskRunSpec['gpus']): Record<string, string> {
  const list = (v: GpuVendor) => (gpus && gpus.vendor === v ? gpus.indices.join(',') : '');
  const env: Record<string, string> = {
    CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    CUDA_VISIBLE_DEVICES: list('nvidia'),
    ROCR_VISIBLE_DEVICES: list('amd'),
  };
  if (gpus?.vendor === 'intel') env.ZE_AFFINITY_MASK = list('intel');
  return env;
}

export interface TaskEnvPaths {
  /** NEXUS_WORK_DIR as the task sees it */
  workDir: string;
  /** NEXUS_RESULT_FILE as the task sees it */
  resultFile: string;
}

/** The variables the driver owns; they override anything in spec.env. */
export function nexusEnv(spec: TaskRunSpec, paths: TaskEnvPaths): Record<string, string> {
  return {
    NEXUS_TASK_ID: spec.taskId,
    NEXUS_SHARD_INDEX: String(spec.shard?.index ?? 0),
    NEXUS_SHARD_COUNT: String(spec.shard?.count ?? 1),
    NEXUS_WORK_DIR: paths.workDir,
    NEXUS_RESULT_FILE: paths.resultFile,
  };
}

/** base (allow-listed agent env) < spec.env < NEXUS_* and GPU variables. */
export function buildTaskEnv(
  spec: TaskRunSpec,
  paths: TaskEnvPaths,
  base: NodeJS.ProcessEnv = process.env,
  gpu: Record<string, string> = gpuEnv(spec.gpus),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = base[k];
    if (v !== undefined) env[k] = v;
  }
  Object.assign(env, spec.env ?? {}, nexusEnv(spec, paths), gpu);
  return env;
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves argv[0] the way execvp would (PATH from the task's env), so "command not found" is a
 * clear start failure instead of a cryptic spawn error. Returns the path or a reason.
 */
export async function resolveExecutable(cmd: string, pathVar: string | undefined, cwd: string): Promise<{ path: string } | { error: string }> {
  if (cmd.includes('/')) {
    const abs = resolve(cwd, cmd);
    if (await isExecutableFile(abs)) return { path: abs };
    try {
      await stat(abs);
      return { error: `${cmd}: not an executable file` };
    } catch {
      return { error: `${cmd}: no such file` };
    }
  }
  const dirs = (pathVar ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const candidate = join(resolve(cwd, d), cmd);
    if (await isExecutableFile(candidate)) return { path: candidate };
  }
  return { error: `command not found: ${cmd} (searched PATH=${dirs.join(delimiter)})` };
}

/** Writes spec.files under workDir (paths already validated). */
export async function materializeFiles(workDir: string, files: TaskRunSpec['files']): Promise<void> {
  for (const [rel, content] of Object.entries(files ?? {})) {
    const abs = safeRelPath(workDir, rel);
    if (!abs) throw new Error(`file path ${JSON.stringify(rel)} escapes workDir`);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
  }
}
