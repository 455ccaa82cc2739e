/**
 * Pending reasons: the line a task that no device can run carries in `pendingReason`, e.g.
 * "no device has a GPU with ≥ 24 GiB free (3 devices checked: 2 too little VRAM, 1 on battery)".
 */
import type { TaskRequest } from './request.js';

/** 24 GiB, 512 MiB, 1.5 GiB … */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

/** What the task asks for, as the head of its pending reason. */
export function describeNeed(req: TaskRequest): string {
  if (req.gpu) {
    const g = req.gpu;
    const what = [g.vendor, 'GPU'].filter(Boolean).join(' ');
    const n = g.count === 1 ? `a ${what}` : `${g.count} ${what}s`;
    const model = g.modelSource ? ` matching ${g.modelSource}` : '';
    const vram = g.minVramBytes > 0 ? ` with ≥ ${formatBytes(g.minVramBytes)} free` : ' free';
    return `no device has ${n}${model}${vram}`;
  }
  if (req.accelerators) return `no device has ${req.accelerators.map((a) => `${a.count} ${a.type}`).join(' and ')} free`;
  return `no device has ${req.cpuMillis}m CPU and ${formatBytes(req.memoryBytes)} memory free`;
}

/**
 * The pending reason of a task no device can run: what it needs, then how many devices were
 * checked and why each was turned down, most common reason first.
 */
export function summarizeRejections(req: TaskRequest, counts: ReadonlyMap<string, number>, checked: number): string {
  if (checked === 0) return 'no devices are registered';
  const parts = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([r, n]) => `${n} ${r}`);
  return `${describeNeed(req)} (${checked} device${checked === 1 ? '' : 's'} checked: ${parts.join(', ')})`;
}
