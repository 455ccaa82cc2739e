/**
 * The candidate device view: a device as the filters and scorers read it (capabilities, profile
 * rules, what is booked on it), built from its document by `toCandidate`.
 */
import type { Device } from '../resources/device.js';

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
