/**
 * Feasibility: can this device run this task right now? Each filter answers with `undefined`
 * (yes) or a short human reason (no). Reasons are constant strings, so the hot loop allocates
 * nothing, and a task nobody can run gets a summary (pending-reason.ts) such as
 * "no device has a GPU with ≥ 24 GiB free (3 devices checked: 2 too little VRAM, 1 on battery)".
 */
import { NexusError } from '../errors/catalogue.js';
import { WEEKDAYS, type Allocated, type CandidateDevice, type CandidateGpu, type TimeWindow } from './candidate.js';
import type { TaskRequest } from './request.js';

// Defined in request.ts; also exported here, where src/compute/jobs.ts (admission) imports it.
export { compileModelPattern } from './request.js';

/** Tenant quota hook: a reason when the tenant may not book `req` now. */
export type QuotaHook = (req: TaskRequest) => string | undefined;

export interface FilterContext {
  /** Wall clock in milliseconds (for profile time windows). */
  now: number;
  quota?: QuotaHook;
}

/** `undefined` when the device passes; otherwise a short human reason. */
export type Filter = (req: TaskRequest, dev: CandidateDevice, ctx: FilterContext, allocated: Allocated) => string | undefined;

export const REASONS = {
  notReady: 'not ready',
  profileMissing: 'its profile is missing',
  notListed: 'not in deviceIds',
  tier: 'wrong tier',
  os: 'wrong OS',
  arch: 'wrong arch',
  labels: 'labels do not match',
  battery: 'on battery',
  window: 'outside its time window',
  maxTasks: 'at its task limit',
  cpu: 'too little CPU',
  memory: 'too little memory',
  noGpu: 'no GPU',
  fewGpus: 'too few GPUs',
  gpuVendor: 'wrong GPU vendor',
  gpuModel: 'wrong GPU model',
  vram: 'too little VRAM',
  gpusBusy: 'GPUs in use',
  accelerators: 'too few accelerators',
} as const;

export const stateFilter: Filter = (_req, dev) => (dev.state === 'ready' ? undefined : REASONS.notReady);

export const profileMissingFilter: Filter = (_req, dev) => (dev.profile?.missing ? REASONS.profileMissing : undefined);

export const deviceIdsFilter: Filter = (req, dev) => (req.deviceIds && !req.deviceIds.has(dev.id) ? REASONS.notListed : undefined);

export const tierFilter: Filter = (req, dev) => (req.tiers && !req.tiers.includes(dev.tier) ? REASONS.tier : undefined);

export const osFilter: Filter = (req, dev) => (req.os !== undefined && req.os !== dev.os ? REASONS.os : undefined);

export const archFilter: Filter = (req, dev) => (req.arch !== undefined && req.arch !== dev.arch ? REASONS.arch : undefined);

export const labelsFilter: Filter = (req, dev) => {
  const want = req.labels;
  if (!want) return undefined;
  for (let i = 0; i < want.length; i++) if (dev.labels[want[i]![0]] !== want[i]![1]) return REASONS.labels;
  return undefined;
};

interface CompiledWindow {
  days: number; // bit mask of weekdays; 0x7f = every day
  start: number; // minutes since midnight
  end: number;
}
const windowCache = new WeakMap<TimeWindow[], CompiledWindow[]>();

function hhmm(s: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(s);
  if (!m || Number(m[1]) > 24 || Number(m[2]) > 59) throw new NexusError('NEXUS_E_VALIDATION', { field: 'profile.windows', detail: `"${s}" is not HH:MM` });
  return Math.min(24 * 60, Number(m[1]) * 60 + Number(m[2]));
}

function compileWindows(windows: TimeWindow[]): CompiledWindow[] {
  let c = windowCache.get(windows);
  if (!c) {
    c = windows.map((w) => ({
      days: w.days && w.days.length > 0 ? w.days.reduce((m, d) => m | (1 << WEEKDAYS.indexOf(d)), 0) : 0x7f,
      start: hhmm(w.start),
      end: hhmm(w.end),
    }));
    windowCache.set(windows, c);
  }
  return c;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();
const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
let lastZoneRead: { zone: string; minuteOfEpoch: number; day: number; minute: number } | undefined;

/** Day of week (0 = Sunday) and minute of day of `now` on the wall clock of `timeZone`. */
export function zonedWallClock(now: number, timeZone: string): { day: number; minute: number } {
  const minuteOfEpoch = Math.floor(now / 60_000);
  if (lastZoneRead && lastZoneRead.zone === timeZone && lastZoneRead.minuteOfEpoch === minuteOfEpoch) return lastZoneRead;
  let fmt = zoneFormats.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    zoneFormats.set(timeZone, fmt);
  }
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const p of fmt.formatToParts(now)) {
    if (p.type === 'weekday') day = WEEKDAY_INDEX[p.value] ?? 0;
    else if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'minute') minute = Number(p.value);
  }
  lastZoneRead = { zone: timeZone, minuteOfEpoch, day, minute: hour * 60 + minute };
  return lastZoneRead;
}

/**
 * True when `now` falls inside one of `windows`: read on the wall clock of `timeZone` when given,
 * else on a clock `utcOffsetMinutes` from UTC. No windows = any time.
 */
export function inTimeWindows(windows: TimeWindow[], now: number, utcOffsetMinutes = 0, timeZone?: string): boolean {
  if (windows.length === 0) return true;
  let day: number;
  let minute: number;
  if (timeZone) {
    const w = zonedWallClock(now, timeZone);
    day = w.day;
    minute = w.minute;
  } else {
    const t = new Date(now + utcOffsetMinutes * 60_000);
    day = t.getUTCDay();
    minute = t.getUTCHours() * 60 + t.getUTCMinutes();
  }
  const prevDay = (day + 6) % 7;
  for (const w of compileWindows(windows)) {
    if (w.start === w.end) {
      if (w.days & (1 << day)) return true;
    } else if (w.start < w.end) {
      if (w.days & (1 << day) && minute >= w.start && minute < w.end) return true;
    } else {
      if (w.days & (1 << day) && minute >= w.start) return true;
      if (w.days & (1 << prevDay) && minute < w.end) return true;
    }
  }
  return false;
}

/** A GPU task on a device with too few GPUs at all (free or not): static, so named before CPU/memory. */
export const gpuPresenceFilter: Filter = (req, dev) => {
  if (!req.gpu) return undefined;
  const n = dev.capabilities.gpus.length;
  return n === 0 ? REASONS.noGpu : n < req.gpu.count ? REASONS.fewGpus : undefined;
};

export const batteryFilter: Filter = (_req, dev) => (dev.profile?.notOnBattery && dev.power?.onBattery ? REASONS.battery : undefined);

export const windowFilter: Filter = (_req, dev, ctx) => {
  const p = dev.profile;
  if (!p?.windows || p.windows.length === 0) return undefined;
  return inTimeWindows(p.windows, ctx.now, p.utcOffsetMinutes, p.timeZone) ? undefined : REASONS.window;
};

export const maxTasksFilter: Filter = (_req, dev, _ctx, a) =>
  dev.profile?.maxTasks !== undefined && a.tasks >= dev.profile.maxTasks ? REASONS.maxTasks : undefined;

/** Millicores free for tasks: logical cores minus the profile's reservation minus what is booked. */
export function freeCpuMillis(dev: CandidateDevice, a: Allocated = dev.allocated): number {
  return dev.capabilities.cpu.logicalCores * 1000 - (dev.profile?.reservedCpuMillis ?? 0) - a.cpuMillis;
}

export function freeMemoryBytes(dev: CandidateDevice, a: Allocated = dev.allocated): number {
  return dev.capabilities.memory.totalBytes - (dev.profile?.reservedMemoryBytes ?? 0) - a.memoryBytes;
}

export const cpuFilter: Filter = (req, dev, _ctx, a) => (freeCpuMillis(dev, a) < req.cpuMillis ? REASONS.cpu : undefined);

export const memoryFilter: Filter = (req, dev, _ctx, a) => (freeMemoryBytes(dev, a) < req.memoryBytes ? REASONS.memory : undefined);

/**
 * Picks the GPUs for `req` on `dev`: among free GPUs of the right vendor and model with at least
 * `minVramBytes`, the ones with the least VRAM (least waste), lowest index first on ties.
 * Returns their indices in ascending order, or the reason none fit. GPUs that report the same
 * index (MIG instances of one card) count once.
 */
export function chooseGpus(req: TaskRequest, dev: CandidateDevice, a: Allocated = dev.allocated): number[] | string {
  const need = req.gpu;
  if (!need) return [];
  const gpus = dev.capabilities.gpus;
  if (gpus.length === 0) return REASONS.noGpu;
  let distinct = 0;
  let vendorOk = 0;
  let modelOk = 0;
  let vramOk = 0;
  const free: CandidateGpu[] = [];
  const seen = new Set<number>();
  for (const g of gpus) {
    if (seen.has(g.index)) continue;
    seen.add(g.index);
    distinct++;
    if (need.vendor !== undefined && g.vendor !== need.vendor) continue;
    vendorOk++;
    if (need.model && !need.model.test(g.name)) continue;
    modelOk++;
    if ((g.memoryTotalBytes ?? 0) < need.minVramBytes) continue;
    vramOk++;
    if (!a.gpuIndices.has(g.index)) free.push(g);
  }
  if (free.length >= need.count) {
    free.sort((x, y) => (x.memoryTotalBytes ?? 0) - (y.memoryTotalBytes ?? 0) || x.index - y.index);
    return free.slice(0, need.count).map((g) => g.index).sort((x, y) => x - y);
  }
  if (distinct < need.count) return REASONS.fewGpus;
  if (vendorOk < need.count) return REASONS.gpuVendor;
  if (modelOk < need.count) return REASONS.gpuModel;
  if (vramOk < need.count) return REASONS.vram;
  return REASONS.gpusBusy;
}

export const gpuFilter: Filter = (req, dev, _ctx, a) => {
  if (!req.gpu) return undefined;
  const r = chooseGpus(req, dev, a);
  return typeof r === 'string' ? r : undefined;
};

/** Accelerators of `type` the device has. */
export function acceleratorCount(dev: CandidateDevice, type: string): number {
  const list = dev.capabilities.accelerators;
  if (!list) return 0;
  let n = 0;
  for (const x of list) if (x.type === type) n++;
  return n;
}

export const acceleratorFilter: Filter = (req, dev, _ctx, a) => {
  if (!req.accelerators) return undefined;
  for (const want of req.accelerators) {
    const free = acceleratorCount(dev, want.type) - (a.accelerators?.get(want.type) ?? 0);
    if (free < want.count) return REASONS.accelerators;
  }
  return undefined;
};

export const quotaFilter: Filter = (req, _dev, ctx) => ctx.quota?.(req);

/** Filters that do not depend on what is booked: a device failing one cannot be freed up by preemption. */
export const STATIC_FILTERS: readonly Filter[] = [
  stateFilter, profileMissingFilter, deviceIdsFilter, tierFilter, osFilter, archFilter, labelsFilter, gpuPresenceFilter, batteryFilter, windowFilter,
];

/** Filters over free capacity. */
export const CAPACITY_FILTERS: readonly Filter[] = [maxTasksFilter, cpuFilter, memoryFilter, gpuFilter, acceleratorFilter];

const NON_GPU_CAPACITY_FILTERS: readonly Filter[] = [maxTasksFilter, cpuFilter, memoryFilter, acceleratorFilter];

/** The capacity filters but the GPU one (the placement scan chooses GPUs itself, once). */
export function nonGpuCapacityReject(req: TaskRequest, dev: CandidateDevice, ctx: FilterContext, a: Allocated = dev.allocated): string | undefined {
  for (let i = 0; i < NON_GPU_CAPACITY_FILTERS.length; i++) {
    const r = NON_GPU_CAPACITY_FILTERS[i]!(req, dev, ctx, a);
    if (r !== undefined) return r;
  }
  return undefined;
}

/**
 * `staticReject ?? nonGpuCapacityReject`, fused for the placement hot loop: the same checks in
 * the same order with the same reasons, without a call per filter (feasibility.test.ts checks
 * the two agree).
 */
export function quickReject(req: TaskRequest, dev: CandidateDevice, ctx: FilterContext): string | undefined {
  if (dev.state !== 'ready') return REASONS.notReady;
  const p = dev.profile;
  if (p?.missing) return REASONS.profileMissing;
  const caps = dev.capabilities;
  if (req.constrained) {
    if (req.deviceIds && !req.deviceIds.has(dev.id)) return REASONS.notListed;
    if (req.tiers && !req.tiers.includes(dev.tier)) return REASONS.tier;
    if (req.os !== undefined && req.os !== dev.os) return REASONS.os;
    if (req.arch !== undefined && req.arch !== dev.arch) return REASONS.arch;
    const want = req.labels;
    if (want) for (let i = 0; i < want.length; i++) if (dev.labels[want[i]![0]] !== want[i]![1]) return REASONS.labels;
    if (req.gpu) {
      const n = caps.gpus.length;
      if (n === 0) return REASONS.noGpu;
      if (n < req.gpu.count) return REASONS.fewGpus;
    }
  }
  const a = dev.allocated;
  let reservedCpu = 0;
  let reservedMem = 0;
  if (p !== undefined) {
    if (p.notOnBattery && dev.power?.onBattery) return REASONS.battery;
    if (p.windows && p.windows.length > 0 && !inTimeWindows(p.windows, ctx.now, p.utcOffsetMinutes, p.timeZone)) return REASONS.window;
    if (p.maxTasks !== undefined && a.tasks >= p.maxTasks) return REASONS.maxTasks;
    reservedCpu = p.reservedCpuMillis ?? 0;
    reservedMem = p.reservedMemoryBytes ?? 0;
  }
  if (caps.cpu.logicalCores * 1000 - reservedCpu - a.cpuMillis < req.cpuMillis) return REASONS.cpu;
  if (caps.memory.totalBytes - reservedMem - a.memoryBytes < req.memoryBytes) return REASONS.memory;
  if (req.accelerators) return acceleratorFilter(req, dev, ctx, a);
  return undefined;
}

/** Every filter, in the order they run (static first, so reasons name the most basic misfit). */
export const FILTERS: readonly Filter[] = [...STATIC_FILTERS, ...CAPACITY_FILTERS, quotaFilter];

/** Runs the static filters. */
export function staticReject(req: TaskRequest, dev: CandidateDevice, ctx: FilterContext): string | undefined {
  for (let i = 0; i < STATIC_FILTERS.length; i++) {
    const r = STATIC_FILTERS[i]!(req, dev, ctx, dev.allocated);
    if (r !== undefined) return r;
  }
  return undefined;
}

/** Runs the capacity filters against `a` (what is booked, or a hypothetical booking). */
export function capacityReject(req: TaskRequest, dev: CandidateDevice, ctx: FilterContext, a: Allocated = dev.allocated): string | undefined {
  for (let i = 0; i < CAPACITY_FILTERS.length; i++) {
    const r = CAPACITY_FILTERS[i]!(req, dev, ctx, a);
    if (r !== undefined) return r;
  }
  return undefined;
}

/** `undefined` when `dev` can run `req` now (quota hook included); else the first reason it cannot. */
export function feasible(req: TaskRequest, dev: CandidateDevice, ctx: FilterContext): string | undefined {
  return staticReject(req, dev, ctx) ?? capacityReject(req, dev, ctx) ?? quotaFilter(req, dev, ctx, dev.allocated);
}
