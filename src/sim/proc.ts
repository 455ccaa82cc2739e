/** CPU time and RSS of a process from /proc (Linux), for benchmarks that watch another process. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`, 100 nearly everywhere). */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface ProcSample {
  /** performance.now() when sampled. */
  at: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
  /** stime alone (time in the kernel: syscalls, the network stack), seconds. */
  systemSeconds: number;
  /** VmRSS, bytes. */
  rssBytes: number;
}

export function sampleProcess(pid: number): ProcSample {
  const at = performance.now();
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(f[11]) + Number(f[12])) / clockTicks(); // utime (14) and stime (15)
  const systemSeconds = Number(f[12]) / clockTicks();
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { at, cpuSeconds, systemSeconds, rssBytes: m ? Number(m[1]) * 1024 : 0 };
}

/** Busy share of one core between two samples, in percent. */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  return ((b.cpuSeconds - a.cpuSeconds) / ((b.at - a.at) / 1000)) * 100;
}

/** Kernel share of one core between two samples, in percent. */
export function systemPercent(a: ProcSample, b: ProcSample): number {
  return ((b.systemSeconds - a.systemSeconds) / ((b.at - a.at) / 1000)) * 100;
}
