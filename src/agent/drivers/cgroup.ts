/**
 * cgroup v2 limits for exec tasks, where the agent may use them.
 *
 * The agent can limit a task only when (1) a cgroup2 filesystem is mounted, (2) the `cpu` and
 * `memory` controllers are bound to it (not to cgroup v1 hierarchies, as in the "hybrid" layout),
 * (3) they are enabled in `cgroup.subtree_control` of the parent the agent creates task cgroups
 * in — its own cgroup, or a delegated subtree named by configuration — and (4) that parent is
 * writable. `detectCgroupV2` checks all four and says which one failed; the exec driver then runs
 * tasks without limits and reports that reason.
 *
 * Per task: `<parent>/nexus-task-<id>` with `cpu.max`, `memory.max`, `memory.swap.max = 0` and
 * `memory.oom.group = 1`. The task joins it before it execs (`joinArgv`: a two-line shell shim
 * writes its own pid to `cgroup.procs`, then `exec`s the command), so no child can be forked
 * outside it. After the task ends, `memory.events` says whether the OOM killer struck, and the
 * cgroup is emptied (`cgroup.kill`) and removed.
 *
 * All paths go through `root` ('/' in production, a fixture dir in tests).
 */
import { mkdir, readFile, rmdir, writeFile as fsWriteFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { sleep } from './proc.js';

export interface CgroupOptions {
  /** filesystem root: '/' in production, a fixture dir in tests @default '/' */
  root?: string;
  /**
   * A delegated cgroup directory (as seen from `root`, e.g. '/sys/fs/cgroup/nexus.slice') to create
   * task cgroups in, instead of the agent's own cgroup.
   */
  parent?: string;
  /** how files are written; tests inject failures @default fs.promises.writeFile */
  write?: (path: string, data: string) => Promise<void>;
}

export type CgroupSupport =
  | { enforced: true; /** where task cgroups are created (absolute, under root) */ parent: string; mount: string }
  | { enforced: false; reason: string };

interface MountEntry {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/self/mountinfo (see proc(5)). */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    if (l.length < 5 || r.length < 1) continue;
    out.push({ root: unescapeMount(l[3]!), mountPoint: unescapeMount(l[4]!), fsType: r[0]!, superOptions: (r[2] ?? '').split(',') });
  }
  return out;
}

/** The cgroup v2 path of this process, from /proc/self/cgroup's `0::<path>` line. */
export function parseOwnCgroup(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3).trim() || '/';
  }
  return undefined;
}

const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean);

async function read(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

const errText = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}` : String((e as Error)?.message ?? err);
};

const NEEDED = ['cpu', 'memory'] as const;

/**
 * Decides whether task cgroups with cpu+memory limits can be created, and where. Never throws.
 * It may enable `+cpu +memory` in the candidate parent's `cgroup.subtree_control` (the kernel
 * refuses with EBUSY when that cgroup itself holds processes, which is then the reported reason).
 */
export async function detectCgroupV2(options: CgroupOptions = {}): Promise<CgroupSupport> {
  const root = options.root ?? '/';
  const write = options.write ?? ((p: string, d: string) => fsWriteFile(p, d));
  const at = (p: string) => join(root, p);
  if (root === '/' && process.platform !== 'linux') return { enforced: false, reason: `cgroups are Linux-only (this is ${process.platform})` };

  const mountinfo = await read(at('/proc/self/mountinfo'));
  if (mountinfo === undefined) return { enforced: false, reason: 'cannot read /proc/self/mountinfo' };
  const mounts = parseMountInfo(mountinfo);
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const v1Holding = NEEDED.filter((c) => mounts.some((m) => m.fsType === 'cgroup' && m.superOptions.includes(c)));
  if (v2.length === 0) {
    return { enforced: false, reason: `no cgroup2 filesystem is mounted (cgroup v1 only${v1Holding.length ? `: ${v1Holding.join(', ')} on v1 hierarchies` : ''})` };
  }

  let candidate: string;
  let mount: MountEntry;
  if (options.parent) {
    const p = options.parent;
    const m = v2.filter((e) => p === e.mountPoint || p.startsWith(e.mountPoint.endsWith('/') ? e.mountPoint : `${e.mountPoint}/`));
    if (m.length === 0) return { enforced: false, reason: `configured cgroup parent ${p} is not inside a cgroup2 mount (${v2.map((e) => e.mountPoint).join(', ')})` };
    mount = m.sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0]!;
    candidate = at(p);
  } else {
    const own = parseOwnCgroup((await read(at('/proc/self/cgroup'))) ?? '');
    if (own === undefined) return { enforced: false, reason: 'this process has no cgroup v2 membership (no 0:: line in /proc/self/cgroup)' };
    const m = v2.find((e) => own === e.root || e.root === '/' || own.startsWith(`${e.root}/`));
    if (!m) return { enforced: false, reason: `own cgroup ${own} is outside every cgroup2 mount` };
    mount = m;
    const rel = m.root === '/' ? own : own.slice(m.root.length);
    if (rel.split('/').includes('..')) return { enforced: false, reason: `own cgroup ${own} lies outside this cgroup namespace` };
    candidate = at(posix.join(m.mountPoint, rel));
  }
  const shown = candidate.slice(root === '/' ? 0 : root.length) || '/';

  const controllers = await read(join(candidate, 'cgroup.controllers'));
  if (controllers === undefined) return { enforced: false, reason: `cannot read ${shown}/cgroup.controllers` };
  const missing = NEEDED.filter((c) => !words(controllers).includes(c));
  if (missing.length > 0) {
    const hybrid = missing.filter((c) => v1Holding.includes(c));
    const why = hybrid.length
      ? `cgroup2 is mounted at ${mount.mountPoint} but ${hybrid.join(' and ')} ${hybrid.length > 1 ? 'are' : 'is'} bound to cgroup v1 hierarchies (hybrid layout); v2 limits need the unified hierarchy (e.g. boot with systemd.unified_cgroup_hierarchy=1)`
      : `controllers ${missing.join(', ')} are not available in ${shown} (cgroup.controllers: ${words(controllers).join(' ') || 'none'}); they must be delegated to it`;
    return { enforced: false, reason: why };
  }

  const subtree = words(await read(join(candidate, 'cgroup.subtree_control')));
  const toEnable = NEEDED.filter((c) => !subtree.includes(c));
  if (toEnable.length > 0) {
    try {
      await write(join(candidate, 'cgroup.subtree_control'), toEnable.map((c) => `+${c}`).join(' '));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException)?.code;
      const hint =
        code === 'EBUSY'
          ? 'it holds processes itself (cgroup v2 "no internal processes" rule); run the agent in a leaf cgroup (systemd: Delegate=yes, DelegateSubgroup=) and configure the delegated parent'
          : code === 'EROFS' || code === 'EACCES' || code === 'EPERM'
            ? 'it is not writable (read-only cgroupfs or no delegation, as in most containers)'
            : 'the kernel refused';
      return { enforced: false, reason: `${toEnable.join(' and ')} not enabled in ${shown}/cgroup.subtree_control and enabling failed (${errText(err)}): ${hint}` };
    }
  }

  const probe = join(candidate, `nexus-probe-${process.pid}-${Date.now()}`);
  try {
    await mkdir(probe);
  } catch (err) {
    return { enforced: false, reason: `cannot create cgroups under ${shown} (${errText(err)}): not writable or not delegated` };
  }
  await rmdir(probe).catch(() => {});
  return { enforced: true, parent: candidate, mount: at(mount.mountPoint) };
}

/** cpu.max for a millicore limit: "<quota> <period>" in microseconds (quota >= 1000 µs). */
export function cpuMaxValue(cpuMillis: number, periodUs = 100_000): string {
  const quota = Math.max(1000, Math.round((cpuMillis / 1000) * periodUs));
  return `${quota} ${periodUs}`;
}

export function taskCgroupName(taskId: string): string {
  return `nexus-task-${taskId}`;
}

export interface TaskCgroupLimits {
  cpuMillis?: number;
  memoryBytes?: number;
}

/**
 * Creates `<parent>/nexus-task-<id>` and writes its limits. A stale one from an earlier run of
 * the same task is emptied and removed first. On any failure the cgroup is removed again and the
 * error returned: the caller runs the task without limits and reports why.
 */
export async function createTaskCgroup(
  parent: string,
  taskId: string,
  limits: TaskCgroupLimits,
  options: Pick<CgroupOptions, 'write'> = {},
): Promise<{ dir: string } | { error: string }> {
  const write = options.write ?? ((p: string, d: string) => fsWriteFile(p, d));
  const dir = join(parent, taskCgroupName(taskId));
  await removeCgroup(dir, 2000);
  try {
    await mkdir(dir);
  } catch (err) {
    return { error: `cannot create cgroup ${dir}: ${errText(err)}` };
  }
  const settings: [string, string, boolean][] = [];
  if (limits.cpuMillis !== undefined) settings.push(['cpu.max', cpuMaxValue(limits.cpuMillis), true]);
  if (limits.memoryBytes !== undefined) {
    settings.push(['memory.max', String(Math.floor(limits.memoryBytes)), true]);
    settings.push(['memory.swap.max', '0', false]); // absent without swap accounting
  }
  settings.push(['memory.oom.group', '1', false]); // an OOM kills the whole task, not one random child
  for (const [file, value, required] of settings) {
    const path = join(dir, file);
    if (!required && (await read(path)) === undefined) continue;
    try {
      await write(path, value);
    } catch (err) {
      await removeCgroup(dir, 1000);
      return { error: `cannot write ${file}=${value} in ${dir}: ${errText(err)}` };
    }
  }
  return { dir };
}

/** Reads a flat-keyed cgroup file such as memory.events ("oom_kill 1"). */
export async function readKeyed(path: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of ((await read(path)) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** How many processes of the cgroup the OOM killer killed. */
export async function oomKills(dir: string): Promise<number> {
  return (await readKeyed(join(dir, 'memory.events'))).oom_kill ?? 0;
}

async function procsIn(dir: string): Promise<number[]> {
  return words(await read(join(dir, 'cgroup.procs')))
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** SIGKILLs every process in the cgroup (cgroup.kill on Linux >= 5.14, else one by one). */
export async function killCgroup(dir: string): Promise<void> {
  try {
    await fsWriteFile(join(dir, 'cgroup.kill'), '1');
    return;
  } catch {
    /* older kernel: fall through */
  }
  for (const pid of await procsIn(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Empties and removes a task cgroup; true when it is gone (or never existed). */
export async function removeCgroup(dir: string, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') return false; // cgroupfs reports live members as EBUSY
    }
    if (Date.now() >= deadline) return false;
    if (attempt % 5 === 0) await killCgroup(dir);
    await sleep(20);
  }
}

/** The shim a task runs under to join its cgroup before exec: no child is ever forked outside it. */
export const JOIN_SCRIPT =
  'echo $$ > "$1" || { echo "nexus: cannot join cgroup ${1%/cgroup.procs}" >&2; : > "$2"; exit 126; }; shift 2; exec "$@"';

export function joinArgv(cgroupDir: string, failMarker: string, argv: string[]): string[] {
  return ['/bin/sh', '-c', JOIN_SCRIPT, 'nexus-cgroup-join', join(cgroupDir, 'cgroup.procs'), failMarker, ...argv];
}
