/**
 * Feasibility: can this device run this task right now? Each filter answers with `undefined`
 * (yes) or a short human reason (no). Reasons are constant strings, so the hot loop allocates
 * nothing, and a task nobody can run gets a summary such as
 * "no device has a GPU with ≥ 24 GiB free (3 devices checked: 2 too little VRAM, 1 on battery)".
 */
import { NexusError } from '../errors/catalogue.js';
import type { Device } from '../resources/device.js';
import type { Task } from '../resources/job.js';

// ---------------------------------------------------------------------------------------------
// The candidate device view
// ---------------------------------------------------------------------------------------------

export interface CandidateGpu {
  /** The GPU's `index` as the vendor tool reports it (what CUDA_VISIBLE_DEVICES takes). */
  index: number;
  vendor: string;
  name: string;
  memoryTotalBytes?: number;
}

/** What is booked on a device (mirrors its `/nexus/alloc/<id>` document). */
export interface Allocated {
  cpuMillis: number;
  memoryBytes: number;
  gpuIndices: Set<number>;
  /** Number of tasks booked. */
  tasks: number;
  /** Booked accelerators by type. */
  accelerators?: Map<string, number>;
}

export type Weekday = 'sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat';
export const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** A window in which a device accepts work; `end` before `start` wraps past midnight. */
export interface TimeWindow {
  /** Days the window starts on. @default every day */
  days?: Weekday[];
  /** 'HH:MM' */
  start: string;
  /** 'HH:MM'; equal to start means the whole day */
  end: string;
}

/** Device profile rules (DESIGN: "Profiles: named presets"). */
export interface ProfileRules {
  /** CPU held back for the owner, in millicores. */
  reservedCpuMillis?: number;
  reservedMemoryBytes?: number;
  /** Accept no work while running on battery. */
  notOnBattery?: boolean;
  /** Accept work only inside one of these windows. */
  windows?: TimeWindow[];
  /**
   * IANA time zone the windows are read in (wall clock, follows DST), as device profiles do
   * (docs/adr/009-profiles-tiers-topology.md). Wins over `utcOffsetMinutes`.
   */
  timeZone?: string;
  /** Fixed offset of the windows' clock from UTC, in minutes, when no `timeZone`. @default 0 */
  utcOffsetMinutes?: number;
  /** The device names a profile that does not exist: it gets no work (as `applyProfile` says). */
  missing?: boolean;
  /** Most tasks at once. */
  maxTasks?: number;
}

export interface CandidateDevice {
  id: string;
  state: string;
  tier: string;
  labels: Record<string, string>;
  os: string;
  arch: string;
  capabilities: {
    cpu: { logicalCores: number; speedScore?: number };
    memory: { totalBytes: number };
    gpus: CandidateGpu[];
    accelerators?: { type: string }[];
  };
  power?: { onBattery: boolean };
  allocated: Allocated;
  profile?: ProfileRules;
}

/**
 * The candidate view of a device document (capabilities as the agent's probes report them:
 * src/agent/probes/capabilities.ts). `allocated` is shared, not copied.
 */
export function toCandidate(d: Device, allocated: Allocated, profile?: ProfileRules): CandidateDevice {
  const caps = d.capabilities as Device['capabilities'] & {
    cpu: { speedScore?: number };
    accelerators?: { type: string }[];
    power?: { onBattery?: boolean };
  };
  const gpus: CandidateGpu[] = (caps.gpus as Partial<CandidateGpu>[]).map((g, i) => ({
    index: typeof g.index === 'number' ? g.index : i,
    vendor: String(g.vendor ?? ''),
    name: String(g.name ?? ''),
    ...(typeof g.memoryTotalBytes === 'number' ? { memoryTotalBytes: g.memoryTotalBytes } : {}),
  }));
  // Every candidate has the same keys in the same order (undefined where absent), so the hot
  // loop's property reads stay monomorphic.
  const view: CandidateDevice = {
    id: d.id,
    state: d.state,
    tier: d.tier,
    labels: d.labels ?? {},
    os: caps.os.platform,
    arch: caps.cpu.arch,
    capabilities: {
      cpu: { logicalCores: caps.cpu.logicalCores, speedScore: typeof caps.cpu.speedScore === 'number' ? caps.cpu.speedScore : undefined },
      memory: { totalBytes: caps.memory.totalBytes },
      gpus,
      accelerators: Array.isArray(caps.accelerators) && caps.accelerators.length > 0 ? caps.accelerators : undefined,
    },
    power: caps.power ? { onBattery: caps.power.onBattery === true } : undefined,
    allocated,
    profile,
  };
  return view;
}

// ---------------------------------------------------------------------------------------------
// The compiled request (built once per task document, reused for every device)
// ---------------------------------------------------------------------------------------------

export interface GpuNeed {
  count: number;
  vendor?: string;
  /** The compiled model pattern. */
  model?: RegExp;
  modelSource?: string;
  minVramBytes: number;
}

export interface CompiledAffinity {
  labels?: [string, string][];
  tier?: string;
  deviceId?: string;
  weight: number;
}

/** A task's requirements in the shape the filters and scorers read. */
export interface TaskRequest {
  taskId: string;
  tenant: string;
  priority: number;
  cpuMillis: number;
  memoryBytes: number;
  gpu?: GpuNeed;
  accelerators?: { type: string; count: number }[];
  labels?: [string, string][];
  tiers?: readonly string[];
  os?: string;
  arch?: string;
  deviceIds?: ReadonlySet<string>;
  affinities?: CompiledAffinity[];
  spread: boolean;
  failedDeviceIds?: ReadonlySet<string>;
  /** Any of deviceIds, tiers, os, arch, labels or gpu is set (lets the hot loop skip those checks). */
  constrained: boolean;
}

const signatures = new WeakMap<TaskRequest, string>();
const sources = new WeakMap<TaskRequest, RequestSource>();

/**
 * Equal for tasks that are interchangeable for feasibility (same tenant, resources, constraints
 * and failure history): the scheduler remembers per pass that a signature fits nowhere.
 * Computed on first use (most tasks place on the first try and never need it).
 */
export function signatureOf(req: TaskRequest): string {
  let sig = signatures.get(req);
  if (sig === undefined) {
    const task = sources.get(req)!;
    sig = JSON.stringify([task.tenant, task.resources, task.placement?.constraints ?? null, task.failedDeviceIds ?? null]);
    signatures.set(req, sig);
  }
  return sig;
}

const NEVER = /(?!)/;

/**
 * Compiles a GPU model pattern: `/regex/flags`, or a glob (`*` any run, `?` one character)
 * matched case-insensitively against the whole GPU name. Throws NEXUS_E_VALIDATION when the
 * regular expression is invalid (call it at admission to reject bad specs early).
 */
export function compileModelPattern(pattern: string): RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) {
    try {
      return new RegExp(re[1]!, re[2]!);
    } catch (e) {
      throw new NexusError('NEXUS_E_VALIDATION', { field: 'resources.gpus.model', detail: (e as Error).message });
    }
  }
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

type RequestSource = Pick<Task, 'id' | 'tenant' | 'priority' | 'resources'> & Partial<Pick<Task, 'placement' | 'failedDeviceIds'>>;

/** Builds the `TaskRequest` of a task (constraints come from `task.placement`). */
export function compileRequest(task: RequestSource): TaskRequest {
  const r = task.resources;
  const c = task.placement?.constraints;
  const req: TaskRequest = {
    taskId: task.id,
    tenant: task.tenant,
    priority: task.priority,
    cpuMillis: r.cpuMillis,
    memoryBytes: r.memoryBytes,
    spread: task.placement?.spread === true,
    constrained: false,
  };
  if (r.gpus && r.gpus.count > 0) {
    let model: RegExp | undefined;
    if (r.gpus.model !== undefined) {
      try {
        model = compileModelPattern(r.gpus.model);
      } catch {
        model = NEVER;
      }
    }
    req.gpu = {
      count: r.gpus.count,
      minVramBytes: r.gpus.minVramBytes ?? 0,
      ...(r.gpus.vendor ? { vendor: r.gpus.vendor } : {}),
      ...(model ? { model, modelSource: r.gpus.model! } : {}),
    };
  }
  if (r.accelerators && r.accelerators.length > 0) req.accelerators = r.accelerators.map((a) => ({ type: a.type, count: a.count }));
  if (c?.labels && Object.keys(c.labels).length > 0) req.labels = Object.entries(c.labels);
  if (c?.tier && c.tier.length > 0) req.tiers = c.tier;
  if (c?.os) req.os = c.os;
  if (c?.arch) req.arch = c.arch;
  if (c?.deviceIds) req.deviceIds = new Set(c.deviceIds);
  const aff = task.placement?.affinities;
  if (aff && aff.length > 0) {
    req.affinities = aff.map((a) => ({
      weight: a.weight,
      ...(a.labels ? { labels: Object.entries(a.labels) } : {}),
      ...(a.tier ? { tier: a.tier } : {}),
      ...(a.deviceId ? { deviceId: a.deviceId } : {}),
    }));
  }
  if (task.failedDeviceIds && task.failedDeviceIds.length > 0) req.failedDeviceIds = new Set(task.failedDeviceIds);
  req.constrained = !!(req.deviceIds || req.tiers || req.os !== undefined || req.arch !== undefined || req.labels || req.gpu);
  sources.set(req, task);
  return req;
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Pending reasons
// ---------------------------------------------------------------------------------------------

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
