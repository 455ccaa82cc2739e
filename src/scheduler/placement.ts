/**
 * Placement of one task: scan devices from a rotating cursor, filter, score a sample of the
 * feasible ones, pick the best; when none fits, find the cheapest preemption. Pure: it reads the
 * candidate devices and returns a decision; the Scheduler books it and commits it.
 */
import type { Allocated, CandidateDevice } from './candidate.js';
import { capacityReject, chooseGpus, quickReject, staticReject, type FilterContext } from './feasibility.js';
import { summarizeRejections } from './pending-reason.js';
import type { TaskRequest } from './request.js';
import { DEFAULT_WEIGHTS, sampleSize, scoreDevice, type LocalityHook, type SampleOptions, type ScoreContext, type ScoreWeights } from './score.js';

/** Placements of a task: the device and the GPU indices chosen there. */
export interface Placement {
  device: CandidateDevice;
  gpuIndices: number[];
  score: number;
}

/** A task booked on a device that preemption may evict. */
export interface Victim {
  taskId: string;
  tenant: string;
  priority: number;
  cpuMillis: number;
  memoryBytes: number;
  gpuIndices: readonly number[];
  accelerators?: readonly { type: string; count: number }[];
}

export interface PreemptionPlan extends Placement {
  victims: Victim[];
}

export type Decision = ({ kind: 'place' } & Placement) | { kind: 'none'; reason: string; checked: number };

/** Priority points a task must be above another to evict it. */
export const PREEMPTION_GAP = 10;

export interface PlannerOptions {
  /** [0, 1) random numbers; the scan starts at a random device. @default Math.random */
  rng?: () => number;
  sample?: SampleOptions;
  weights?: Partial<ScoreWeights>;
  locality?: LocalityHook;
}

export function cloneAllocated(a: Allocated): Allocated {
  return {
    cpuMillis: a.cpuMillis,
    memoryBytes: a.memoryBytes,
    gpuIndices: new Set(a.gpuIndices),
    tasks: a.tasks,
    ...(a.accelerators ? { accelerators: new Map(a.accelerators) } : {}),
  };
}

/** Adds (sign 1) or removes (sign -1) one task's booking to `a`, in place. */
export function bookInto(
  a: Allocated,
  t: { cpuMillis: number; memoryBytes: number; gpuIndices: readonly number[]; accelerators?: readonly { type: string; count: number }[] | undefined },
  sign: 1 | -1,
): void {
  a.cpuMillis += sign * t.cpuMillis;
  a.memoryBytes += sign * t.memoryBytes;
  a.tasks += sign;
  for (const i of t.gpuIndices) {
    if (sign === 1) a.gpuIndices.add(i);
    else a.gpuIndices.delete(i);
  }
  if (t.accelerators) {
    a.accelerators ??= new Map();
    for (const x of t.accelerators) {
      const n = (a.accelerators.get(x.type) ?? 0) + sign * x.count;
      if (n > 0) a.accelerators.set(x.type, n);
      else a.accelerators.delete(x.type);
    }
  }
}

/**
 * Places tasks one at a time over a list of candidate devices. The scan starts at a rotating
 * cursor (random at first), stops once `sampleSize` feasible devices were found, and the
 * best-scoring one wins. For packing, the cursor then moves to the first device that fitted;
 * for spread, past every device looked at (kube-scheduler's rotation). Keep one Planner per
 * scheduler so the rotation persists.
 */
interface ScanView {
  list: readonly CandidateDevice[];
  cursor: number;
}

const constraintKeys = new WeakMap<TaskRequest, string>();

/** The constraint part of the static filters (what a device is, not what it is doing). */
function constraintsHold(req: TaskRequest, d: CandidateDevice): boolean {
  if (req.deviceIds && !req.deviceIds.has(d.id)) return false;
  if (req.tiers && !req.tiers.includes(d.tier)) return false;
  if (req.os !== undefined && req.os !== d.os) return false;
  if (req.arch !== undefined && req.arch !== d.arch) return false;
  if (req.labels && !req.labels.every(([k, v]) => d.labels[k] === v)) return false;
  if (req.gpu && d.capabilities.gpus.length < req.gpu.count) return false;
  return true;
}

/** Why no device of `devices` can take `req`: every device checked, counted by first reason. */
function explain(req: TaskRequest, devices: readonly CandidateDevice[], ctx: FilterContext): string {
  const counts = new Map<string, number>();
  for (const dev of devices) {
    let reason = quickReject(req, dev, ctx);
    if (reason === undefined && req.gpu) {
      const g = chooseGpus(req, dev);
      if (typeof g === 'string') reason = g;
    }
    if (reason !== undefined) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  return summarizeRejections(req, counts, devices.length);
}

export class Planner {
  private readonly main: ScanView = { list: [], cursor: -1 };
  private readonly lists = new Map<string, ScanView>();
  private listsFor: readonly CandidateDevice[] | undefined;
  private listsLength = -1;
  private readonly rng: () => number;
  private readonly sample: SampleOptions;
  readonly scoreCtx: ScoreContext;

  constructor(options: PlannerOptions = {}) {
    this.rng = options.rng ?? Math.random;
    this.sample = options.sample ?? {};
    this.scoreCtx = {
      weights: { ...DEFAULT_WEIGHTS, ...options.weights },
      maxSpeedScore: 0,
      ...(options.locality ? { locality: options.locality } : {}),
    };
  }

  /** Where the next unconstrained scan starts (for tests). */
  get position(): number {
    return this.main.cursor;
  }

  /**
   * Call when a device's static attributes (state aside: labels, tier, os, arch, GPUs) changed
   * or devices came or went: drops the per-constraint candidate lists.
   */
  devicesChanged(): void {
    this.lists.clear();
  }

  /**
   * The devices a constrained task can ever use (deviceIds, tier, os, arch, labels, GPU count),
   * kept per distinct constraint set with its own rotating cursor, so a task that fits 5 % of the
   * cluster scans that 5 % rather than all of it.
   */
  private viewFor(req: TaskRequest, devices: readonly CandidateDevice[]): ScanView {
    if (this.listsFor !== devices || this.listsLength !== devices.length) {
      this.lists.clear();
      this.listsFor = devices;
      this.listsLength = devices.length;
      this.main.list = devices;
    }
    if (!req.constrained) return this.main;
    let key = constraintKeys.get(req);
    if (key === undefined) {
      key = JSON.stringify([req.deviceIds ? [...req.deviceIds] : 0, req.tiers ?? 0, req.os ?? 0, req.arch ?? 0, req.labels ?? 0, req.gpu?.count ?? 0]);
      constraintKeys.set(req, key);
    }
    let view = this.lists.get(key);
    if (!view) {
      view = { list: devices.filter((d) => constraintsHold(req, d)), cursor: -1 };
      this.lists.set(key, view);
    }
    return view;
  }

  /** Chooses a device for `req` among `devices`, or says why none fits. */
  place(req: TaskRequest, devices: readonly CandidateDevice[], ctx: FilterContext): Decision {
    const quota = ctx.quota?.(req);
    if (quota !== undefined) return { kind: 'none', reason: quota, checked: 0 };
    if (devices.length === 0) return { kind: 'none', reason: summarizeRejections(req, new Map(), 0), checked: 0 };
    const view = this.viewFor(req, devices);
    const list = view.list;
    const n = list.length;
    if (n > 0 && (view.cursor < 0 || view.cursor >= n)) view.cursor = Math.floor(this.rng() * n) % n;
    // Spread and affinities are about comparing devices: give them a wider look.
    const base = sampleSize(devices.length, this.sample);
    const want = req.spread || req.affinities ? 2 * base : base;
    let idx = view.cursor;
    let found = 0;
    let visited = 0;
    let best: CandidateDevice | undefined;
    let bestGpus: number[] = [];
    let bestScore = -Infinity;
    let firstFeasible = -1;
    const sc = this.scoreCtx;
    while (visited < n && found < want) {
      const dev = list[idx]!;
      idx = idx + 1 === n ? 0 : idx + 1;
      visited++;
      if (quickReject(req, dev, ctx) !== undefined) continue;
      let gpus: number[] = [];
      if (req.gpu) {
        const g = chooseGpus(req, dev);
        if (typeof g === 'string') continue;
        gpus = g;
      }
      if (found++ === 0) firstFeasible = idx === 0 ? n - 1 : idx - 1;
      const s = scoreDevice(req, dev, sc, gpus);
      if (s > bestScore) {
        bestScore = s;
        best = dev;
        bestGpus = gpus;
      }
    }
    // Spread wants to see the whole cluster over time: rotate past everything looked at
    // (kube-scheduler's rule). Packing resumes at the first device that fitted, so the next task
    // sees the same window minus devices that filled up: tasks pile onto the fullest devices,
    // full devices are not rescanned, and a batch touches few devices.
    if (n > 0) view.cursor = req.spread || firstFeasible < 0 ? idx : firstFeasible;
    if (best) return { kind: 'place', device: best, gpuIndices: bestGpus, score: bestScore };
    return { kind: 'none', reason: explain(req, devices, ctx), checked: devices.length };
  }

  /**
   * When nothing fits: the device where evicting tasks at least PREEMPTION_GAP priority points
   * lower makes room, evicting as little as possible (lowest priorities, fewest tasks). Victims
   * are reprieved highest-priority first when the task still fits without evicting them.
   */
  preempt(
    req: TaskRequest,
    devices: readonly CandidateDevice[],
    ctx: FilterContext,
    victimsOf: (dev: CandidateDevice, maxPriority: number) => readonly Victim[],
  ): PreemptionPlan | undefined {
    const limit = req.priority - PREEMPTION_GAP;
    if (limit < 0) return undefined;
    let best: PreemptionPlan | undefined;
    let bestCost: [number, number, number] | undefined;
    for (const dev of devices) {
      if (dev.allocated.tasks === 0 || staticReject(req, dev, ctx) !== undefined) continue;
      const candidates = victimsOf(dev, limit).filter((v) => v.priority <= limit);
      if (candidates.length === 0) continue;
      const a = cloneAllocated(dev.allocated);
      for (const v of candidates) bookInto(a, v, -1);
      if (!fitsWith(req, dev, ctx, a)) continue;
      // Reprieve: put back the most important candidates while the task still fits.
      candidates.sort((x, y) => y.priority - x.priority || x.cpuMillis - y.cpuMillis);
      const victims: Victim[] = [];
      for (const v of candidates) {
        bookInto(a, v, 1);
        if (!fitsWith(req, dev, ctx, a)) {
          bookInto(a, v, -1);
          victims.push(v);
        }
      }
      const cost: [number, number, number] = [
        Math.max(...victims.map((v) => v.priority)),
        victims.length,
        victims.reduce((s, v) => s + v.priority, 0),
      ];
      if (!bestCost || lexLess(cost, bestCost)) {
        const g = chooseGpus(req, dev, a);
        if (typeof g === 'string') continue;
        bestCost = cost;
        best = { device: dev, gpuIndices: g, victims, score: 0 };
      }
    }
    return best;
  }
}

function fitsWith(req: TaskRequest, dev: CandidateDevice, ctx: FilterContext, a: Allocated): boolean {
  return capacityReject(req, dev, ctx, a) === undefined;
}

function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}
