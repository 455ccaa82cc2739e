/**
 * Scoring: among feasible devices, which is best? Every term is in [0, 1] (affinity in [-1, 1])
 * and weighted; the highest total wins.
 *
 * - fit: bin-pack by default (prefer devices that will be fuller after placement, so whole
 *   devices stay free for big tasks); `spread` inverts it.
 * - gpuFit: least wasted VRAM on the chosen GPUs.
 * - gpuHoard: a CPU-only task is steered away from devices with free GPUs.
 * - speed: capabilities.cpu.speedScore relative to the fastest device seen.
 * - affinity: the task's soft preferences (labels, tier, device), weights −100…100.
 * - locality: an optional hook (data already on the device), 0…1.
 * - failure: a device that an earlier attempt of this task failed on is pushed down.
 *
 * Only a sample of the feasible devices is scored (Nomad's limit, kube-scheduler's
 * percentageOfNodesToScore): `sampleSize` says how many.
 */
import type { CandidateDevice } from './candidate.js';
import type { TaskRequest } from './request.js';

export interface ScoreWeights {
  fit: number;
  gpuFit: number;
  gpuHoard: number;
  speed: number;
  affinity: number;
  locality: number;
  failure: number;
}

export const DEFAULT_WEIGHTS: Readonly<ScoreWeights> = Object.freeze({
  fit: 1,
  gpuFit: 1,
  gpuHoard: 0.5,
  speed: 0.25,
  affinity: 1,
  locality: 1,
  failure: 4,
});

/** Data locality: how much of the task's input is already on `dev`, 0…1. */
export type LocalityHook = (req: TaskRequest, dev: CandidateDevice) => number;

export interface ScoreContext {
  weights: ScoreWeights;
  /** The highest cpu.speedScore among known devices (0 when none reports one). */
  maxSpeedScore: number;
  locality?: LocalityHook;
}

/** Share of the device that will be in use after placing `req` (CPU, memory and GPUs averaged). */
export function utilizationAfter(req: TaskRequest, dev: CandidateDevice): number {
  const a = dev.allocated;
  const caps = dev.capabilities;
  const p = dev.profile;
  const cpuCap = caps.cpu.logicalCores * 1000 - (p ? p.reservedCpuMillis ?? 0 : 0);
  const memCap = caps.memory.totalBytes - (p ? p.reservedMemoryBytes ?? 0 : 0);
  const cpu = cpuCap > 0 ? (a.cpuMillis + req.cpuMillis) / cpuCap : 1;
  const mem = memCap > 0 ? (a.memoryBytes + req.memoryBytes) / memCap : 1;
  if (req.gpu) {
    const total = caps.gpus.length;
    const gpu = total > 0 ? (a.gpuIndices.size + req.gpu.count) / total : 1;
    return (cpu + mem + gpu) / 3;
  }
  return (cpu + mem) / 2;
}

/** Bin-pack (fuller is better) or, when the task asks to spread, emptier is better. */
export function fitScore(req: TaskRequest, dev: CandidateDevice): number {
  const u = utilizationAfter(req, dev);
  return req.spread ? 1 - u : u;
}

const GIB = 1024 ** 3;

/** 1 when the chosen GPUs have exactly the VRAM asked for, falling as more is wasted. */
export function gpuFitScore(req: TaskRequest, dev: CandidateDevice, gpuIndices: readonly number[]): number {
  if (!req.gpu || gpuIndices.length === 0) return 0;
  let wasted = 0;
  for (const i of gpuIndices) {
    const g = dev.capabilities.gpus.find((x) => x.index === i);
    wasted += Math.max(0, (g?.memoryTotalBytes ?? 0) - req.gpu.minVramBytes);
  }
  return 1 / (1 + wasted / (16 * GIB));
}

/** 1 for a CPU-only task on a device with free GPUs (which it would keep from GPU tasks). */
export function gpuHoardPenalty(req: TaskRequest, dev: CandidateDevice): number {
  if (req.gpu) return 0;
  return dev.capabilities.gpus.length > dev.allocated.gpuIndices.size ? 1 : 0;
}

export function speedScore(dev: CandidateDevice, maxSpeedScore: number): number {
  const s = dev.capabilities.cpu.speedScore;
  return s && maxSpeedScore > 0 ? Math.min(1, s / maxSpeedScore) : 0;
}

/** Sum of the weights of the affinities `dev` matches, divided by 100 and clamped to [-1, 1]. */
export function affinityScore(req: TaskRequest, dev: CandidateDevice): number {
  const affs = req.affinities;
  if (!affs) return 0;
  let total = 0;
  for (const a of affs) {
    if (a.deviceId !== undefined && a.deviceId !== dev.id) continue;
    if (a.tier !== undefined && a.tier !== dev.tier) continue;
    if (a.labels && !a.labels.every(([k, v]) => dev.labels[k] === v)) continue;
    total += a.weight;
  }
  return Math.max(-1, Math.min(1, total / 100));
}

/** 1 when an earlier attempt of this task failed on `dev`. */
export function failurePenalty(req: TaskRequest, dev: CandidateDevice): number {
  return req.failedDeviceIds?.has(dev.id) ? 1 : 0;
}

/** The weighted total for placing `req` on `dev` with `gpuIndices`; higher is better. */
export function scoreDevice(req: TaskRequest, dev: CandidateDevice, ctx: ScoreContext, gpuIndices: readonly number[] = []): number {
  const w = ctx.weights;
  let s = w.fit * fitScore(req, dev);
  if (req.gpu) s += w.gpuFit * gpuFitScore(req, dev, gpuIndices);
  else if (w.gpuHoard !== 0 && dev.capabilities.gpus.length > 0) s -= w.gpuHoard * gpuHoardPenalty(req, dev);
  if (w.speed !== 0 && ctx.maxSpeedScore > 0) s += w.speed * speedScore(dev, ctx.maxSpeedScore);
  if (req.affinities) s += w.affinity * affinityScore(req, dev);
  if (ctx.locality) s += w.locality * Math.max(0, Math.min(1, ctx.locality(req, dev)));
  if (req.failedDeviceIds) s -= w.failure * failurePenalty(req, dev);
  return s;
}

export interface SampleOptions {
  /** Always score at least this many feasible devices (or all, if fewer). @default 50 */
  min?: number;
  /** …or this percentage of the cluster, whichever is more. @default 0.5 */
  percentage?: number;
}

/**
 * How many feasible devices to score for one task out of `n` devices: max(min, n · pct / 100),
 * capped at n. A task with affinities or spread should pass a larger sample (see placement).
 */
export function sampleSize(n: number, options: SampleOptions = {}): number {
  const min = options.min ?? 50;
  const pct = options.percentage ?? 0.5;
  return Math.min(n, Math.max(min, Math.ceil((n * pct) / 100)));
}
