/**
 * Live utilization for heartbeats. CPU and memory come from `node:os` on every heartbeat (cheap);
 * GPU use and battery come from the periodic probes (nvidia-smi, sysfs), which cost more, so they
 * run in the background every `slowEveryMs` and the latest result rides along.
 */
import { cpus, freemem, totalmem, type CpuInfo } from 'node:os';
import type { Utilization } from '../resources/device.js';
import { gpusProbe, hostProbeEnv, powerProbe, runProbes, type ProbeEnv } from './probes/index.js';

type CpuTimes = CpuInfo['times'];

/** Busy share (0–100) of all cores between two `os.cpus()` snapshots. */
export function cpuBusyPct(before: CpuTimes[], after: CpuTimes[]): number {
  let busy = 0;
  let total = 0;
  for (let i = 0; i < Math.min(before.length, after.length); i++) {
    const a = before[i]!;
    const b = after[i]!;
    const idle = b.idle - a.idle;
    const all = b.user - a.user + (b.nice - a.nice) + (b.sys - a.sys) + (b.irq - a.irq) + idle;
    busy += all - idle;
    total += all;
  }
  if (total <= 0) return 0;
  return Math.min(100, Math.max(0, Math.round((busy / total) * 1000) / 10));
}

export interface UtilizationSampler {
  /** The utilization since the previous call. */
  sample(): Utilization;
  stop(): void;
}

export interface HostSamplerOptions {
  /** How often GPU use and battery are re-probed, in ms. @default 5000 */
  slowEveryMs?: number;
  /** Where the slow probes read from. @default the live host */
  env?: ProbeEnv;
  /** `os.cpus()` times. @default node:os */
  cpuTimes?: () => CpuTimes[];
  /** [used, total] memory bytes. @default node:os */
  memory?: () => [number, number];
}

/**
 * Samples this machine.
 *
 * @example
 * const sampler = hostSampler();
 * const u = sampler.sample(); // { cpuPct, memoryUsedBytes, memoryTotalBytes, gpus?, battery? }
 * sampler.stop();
 */
export function hostSampler(options: HostSamplerOptions = {}): UtilizationSampler {
  const cpuTimes = options.cpuTimes ?? (() => cpus().map((c) => c.times));
  const memory = options.memory ?? (() => [totalmem() - freemem(), totalmem()] as [number, number]);
  let prev = cpuTimes();
  let slow: Pick<Utilization, 'gpus' | 'battery'> = {};
  let running = false;
  const env = options.env ?? hostProbeEnv({ timeoutMs: 3000 });
  const refresh = async () => {
    if (running) return;
    running = true;
    try {
      const { capabilities } = await runProbes(env, [gpusProbe, powerProbe]);
      const gpus = capabilities.gpus.map((g) => ({
        index: g.index,
        ...(g.utilizationPct !== undefined ? { utilizationPct: Math.min(100, Math.max(0, g.utilizationPct)) } : {}),
        ...(g.memoryUsedBytes !== undefined ? { memoryUsedBytes: Math.max(0, Math.round(g.memoryUsedBytes)) } : {}),
      }));
      const p = capabilities.power;
      const hasBattery = p.batteryPct !== undefined || p.onBattery;
      slow = {
        ...(gpus.length ? { gpus: gpus.slice(0, 64) } : {}),
        ...(hasBattery ? { battery: { onBattery: p.onBattery, ...(p.batteryPct !== undefined ? { pct: Math.min(100, Math.max(0, p.batteryPct)) } : {}), ...(p.charging !== undefined ? { charging: p.charging } : {}) } } : {}),
      };
    } catch {
      /* probes report their own failures as warnings; utilization just lacks the slow part */
    } finally {
      running = false;
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), options.slowEveryMs ?? 5000);
  timer.unref();
  return {
    sample() {
      const now = cpuTimes();
      const cpuPct = cpuBusyPct(prev, now);
      prev = now;
      const [used, total] = memory();
      return { cpuPct, memoryUsedBytes: Math.max(0, Math.round(used)), memoryTotalBytes: Math.round(total), ...slow };
    },
    stop() {
      clearInterval(timer);
    },
  };
}
