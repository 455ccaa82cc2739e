/**
 * Process identity and process-group signalling. A pid alone is not an identity (pids are
 * reused), so every pid NEXUS keeps is paired with the process's start time.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** A pid plus the start time that makes it unambiguous. */
export interface ProcessIdentity {
  pid: number;
  /** Linux: field 22 of /proc/<pid>/stat (clock ticks since boot); elsewhere `ps -o lstart=` */
  startTime: string;
}

interface ProcStat {
  state: string;
  startTime: string;
}

/** Parses /proc/<pid>/stat; the command name is in parentheses and may itself hold spaces or ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // after "pid (comm) " come fields 3.. : state is field 3, starttime field 22
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const state = rest[0];
  const startTime = rest[22 - 3];
  if (!state || !startTime || !/^\d+$/.test(startTime)) return undefined;
  return { state, startTime };
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function psStart(pid: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'lstart=', '-p', String(pid)], { timeout: 5000 }, (err, stdout) => {
      const s = String(stdout ?? '').trim();
      resolve(err || !s ? undefined : s);
    });
  });
}

/** The start time of a live (non-zombie) process, or undefined when there is none. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (process.platform === 'linux') {
    const st = await procStat(pid);
    if (!st || st.state === 'Z' || st.state === 'X') return undefined;
    return st.startTime;
  }
  return psStart(pid);
}

export async function identify(pid: number): Promise<ProcessIdentity | undefined> {
  const startTime = await processStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True when `id.pid` is alive, not a zombie, and is still the same process (same start time). */
export async function isSameProcess(id: ProcessIdentity | undefined): Promise<boolean> {
  if (!id) return false;
  return (await processStartTime(id.pid)) === id.startTime;
}

/** True when the pid names a live, non-zombie process. */
export async function isAlive(pid: number): Promise<boolean> {
  return (await processStartTime(pid)) !== undefined;
}

/** Sends a signal to a whole process group; false when the group is gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function killPid(pid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while any process is still in the group. */
export function groupExists(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
