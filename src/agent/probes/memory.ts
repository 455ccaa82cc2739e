import type { MemoryCapabilities } from './capabilities.js';
import { darwinSysctl } from './cpu.js';
import { defined, KIB, keyValues, MIB, num } from './parse.js';
import { type Probe, type ProbeEnv, readForPlatform } from './types.js';

export function parseMeminfo(text: string): Partial<MemoryCapabilities> {
  const kv = keyValues(text, ':');
  const kb = (k: string) => {
    const n = num(kv.get(k)?.replace(/\s*kB$/, ''));
    return n === undefined ? undefined : n * KIB;
  };
  return {
    totalBytes: kb('MemTotal'),
    // kernels before 3.14 have no MemAvailable; MemFree is the conservative stand-in
    availableBytes: kb('MemAvailable') ?? kb('MemFree'),
    swapTotalBytes: kb('SwapTotal'),
    swapFreeBytes: kb('SwapFree'),
  };
}

/** `vm_stat`: "(page size of 16384 bytes)" then "Pages free: 3857." lines. Available = free + inactive + speculative. */
export function parseVmStat(text: string): number | undefined {
  const page = num(text.match(/page size of (\d+) bytes/)?.[1]);
  const kv = keyValues(text, ':');
  const pages = (k: string) => num(kv.get(k)?.replace(/\.$/, ''));
  const free = pages('Pages free');
  if (page === undefined || free === undefined) return undefined;
  return (free + (pages('Pages inactive') ?? 0) + (pages('Pages speculative') ?? 0)) * page;
}

/** `vm.swapusage: total = 2048.00M  used = 1117.25M  free = 930.75M  (encrypted)` */
function swapUsage(text: string | undefined): { total?: number; free?: number } {
  const field = (name: string) => {
    const m = text?.match(new RegExp(`${name} = ([\\d.]+)([KMG])`));
    return m ? Math.round(Number(m[1]) * { K: KIB, M: MIB, G: 1024 * MIB }[m[2] as 'K' | 'M' | 'G']) : undefined;
  };
  return { total: field('total'), free: field('free') };
}

async function linux(env: ProbeEnv, warnings: string[]): Promise<Partial<MemoryCapabilities> | undefined> {
  const text = await env.readFile('/proc/meminfo');
  if (text === undefined) {
    warnings.push('/proc/meminfo unreadable');
    return undefined;
  }
  const mem = parseMeminfo(text);
  if (mem.totalBytes === undefined) warnings.push('MemTotal missing from /proc/meminfo');
  return mem;
}

async function darwin(env: ProbeEnv, warnings: string[]): Promise<Partial<MemoryCapabilities> | undefined> {
  const s = await darwinSysctl(env);
  const total = num(s?.get('hw.memsize'));
  if (total === undefined) warnings.push('hw.memsize unavailable from sysctl');
  const vm = await env.exec('vm_stat', []);
  const available = vm ? parseVmStat(vm.stdout) : undefined;
  if (available === undefined) warnings.push(vm ? 'vm_stat output not understood' : 'vm_stat not found; available memory unknown');
  const swap = swapUsage(s?.get('vm.swapusage'));
  if (swap.total === undefined) warnings.push('vm.swapusage unavailable from sysctl; swap unknown');
  return { totalBytes: total, availableBytes: available, swapTotalBytes: swap.total, swapFreeBytes: swap.free };
}

export const memoryProbe: Probe<'memory'> = {
  name: 'memory',
  key: 'memory',
  periodic: true,
  async run(env) {
    const warnings: string[] = [];
    const value = await readForPlatform(env, { linux, darwin }, warnings);
    return { value: value && defined(value), warnings };
  },
};
