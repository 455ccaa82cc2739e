/**
 * Simulated devices and tasks for tests and bench/scheduler.ts: documents shaped exactly like
 * the ones agents and the job controller write.
 */
import type { Device } from '../resources/device.js';
import type { Task, TaskResources, TaskPlacement } from '../resources/job.js';
import type { ProfileRules } from './candidate.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export interface SimGpu {
  vendor?: 'nvidia' | 'amd' | 'apple' | 'intel';
  name?: string;
  vramGiB: number;
}

export interface SimDeviceOptions {
  cores?: number;
  memGiB?: number;
  gpus?: SimGpu[];
  tier?: Device['tier'];
  state?: Device['state'];
  labels?: Record<string, string>;
  os?: string;
  arch?: string;
  speedScore?: number;
  onBattery?: boolean;
  accelerators?: { type: string }[];
  profile?: ProfileRules;
}

/**
 * A device document as DeviceService.register would store it. `profile` rules, when given, are
 * embedded in the document's `profile` field (the Scheduler accepts rules there as well as a
 * profile name), so a simulation needs no profile documents.
 */
export function simDevice(id: string, o: SimDeviceOptions = {}): Device {
  const gpus = (o.gpus ?? []).map((g, index) => ({
    index,
    vendor: g.vendor ?? 'nvidia',
    name: g.name ?? `NVIDIA GPU ${g.vramGiB}GB`,
    memoryTotalBytes: g.vramGiB * GiB,
  }));
  const capabilities: Device['capabilities'] = {
    os: { platform: o.os ?? 'linux', kernel: '6.8.0', hostname: id },
    cpu: { arch: o.arch ?? 'x64', logicalCores: o.cores ?? 8, model: 'sim', ...(o.speedScore !== undefined ? { speedScore: o.speedScore } : {}) },
    memory: { totalBytes: (o.memGiB ?? 32) * GiB },
    gpus,
  };
  Object.assign(capabilities, { accelerators: o.accelerators ?? [], power: { onBattery: o.onBattery ?? false } });
  const doc = {
    id,
    name: id,
    state: o.state ?? 'ready',
    tier: o.tier ?? 'local',
    labels: o.labels ?? {},
    capabilities,
    warnings: [],
    registeredAt: '2025-01-01T00:00:00.000Z',
    ...(o.profile ? { profile: o.profile } : {}),
  };
  return doc as unknown as Device;
}

export interface SimTaskOptions {
  tenant?: string;
  priority?: number;
  resources?: Partial<TaskResources>;
  placement?: TaskPlacement;
  state?: Task['state'];
  deviceId?: string;
  gpuIndices?: number[];
  createdAt?: string;
  failedDeviceIds?: string[];
}

/** A pending task document as the job controller would store it. */
export function simTask(id: string, o: SimTaskOptions = {}): Task {
  return {
    id,
    jobId: id.replace(/-\d+$/, ''),
    tenant: o.tenant ?? 'acme',
    shardIndex: 0,
    attempt: 0,
    state: o.state ?? 'pending',
    priority: o.priority ?? 50,
    resources: { cpuMillis: 1000, memoryBytes: GiB, ...o.resources },
    ...(o.placement ? { placement: o.placement } : {}),
    ...(o.deviceId ? { deviceId: o.deviceId } : {}),
    ...(o.gpuIndices ? { gpuIndices: o.gpuIndices } : {}),
    ...(o.failedDeviceIds ? { failedDeviceIds: o.failedDeviceIds } : {}),
    createdAt: o.createdAt ?? '2025-01-01T00:00:00.000Z',
  };
}

/** A small deterministic PRNG (mulberry32): same seed, same cluster. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GPU_MODELS: SimGpu[] = [
  { name: 'NVIDIA GeForce RTX 3060', vramGiB: 12 },
  { name: 'NVIDIA GeForce RTX 4090', vramGiB: 24 },
  { name: 'NVIDIA A100-SXM4-40GB', vramGiB: 40 },
  { name: 'NVIDIA A100-SXM4-80GB', vramGiB: 80 },
  { name: 'NVIDIA H100 80GB HBM3', vramGiB: 80 },
  { vendor: 'amd', name: 'AMD Instinct MI210', vramGiB: 64 },
];

/**
 * A varied fleet: CPU-only boxes and laptops, 1–8-GPU servers of different VRAM, edge boards,
 * labels (zone, disk) and tiers.
 */
export function simFleet(n: number, rng: () => number): Device[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const out: Device[] = [];
  for (let i = 0; i < n; i++) {
    const id = `dev-${String(i).padStart(6, '0')}`;
    const kind = rng();
    const zone = `zone-${i % 8}`;
    if (kind < 0.35) {
      const g = pick(GPU_MODELS);
      const count = pick([1, 2, 4, 8]);
      out.push(simDevice(id, {
        cores: pick([32, 64, 96, 128]), memGiB: pick([128, 256, 512]), tier: pick(['local', 'cloud'] as const),
        gpus: Array.from({ length: count }, () => g), labels: { zone, disk: 'nvme', gpu: 'yes' }, speedScore: 400 + Math.floor(rng() * 600),
      }));
    } else if (kind < 0.85) {
      out.push(simDevice(id, {
        cores: pick([4, 8, 16, 32, 64]), memGiB: pick([8, 16, 32, 64, 128]), tier: pick(['local', 'cloud'] as const),
        labels: { zone, disk: pick(['ssd', 'nvme', 'hdd']) }, speedScore: 200 + Math.floor(rng() * 800),
      }));
    } else {
      out.push(simDevice(id, {
        cores: 4, memGiB: pick([4, 8]), tier: 'edge', arch: 'arm64', labels: { zone, board: 'pi' }, speedScore: 50 + Math.floor(rng() * 100),
        ...(rng() < 0.3 ? { accelerators: [{ type: 'tpu' }] } : {}),
      }));
    }
  }
  return out;
}

/** A mixed workload: mostly small CPU tasks, some GPU tasks with VRAM needs, some constrained. */
export function simWorkload(n: number, rng: () => number, tenants = ['acme', 'globex', 'initech']): Task[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const out: Task[] = [];
  for (let i = 0; i < n; i++) {
    const id = `job-${Math.floor(i / 100)}-${i % 100}`;
    const k = rng();
    let resources: Partial<TaskResources>;
    let placement: TaskPlacement | undefined;
    if (k < 0.01) {
      resources = { cpuMillis: 2000, memoryBytes: 8 * GiB, gpus: { count: pick([1, 1, 2]), minVramBytes: pick([8, 16, 24, 40]) * GiB } };
    } else if (k < 0.05) {
      resources = { cpuMillis: 250, memoryBytes: 256 * MiB };
      placement = { constraints: { tier: ['edge'] } };
    } else if (k < 0.15) {
      resources = { cpuMillis: 500, memoryBytes: 512 * MiB };
      placement = { constraints: { labels: { disk: 'nvme' } }, affinities: [{ labels: { zone: `zone-${i % 8}` }, weight: 50 }] };
    } else {
      resources = { cpuMillis: pick([100, 100, 200, 250, 500]), memoryBytes: pick([128, 256, 512]) * MiB };
    }
    out.push(simTask(id, {
      tenant: pick(tenants), priority: pick([20, 50, 50, 50, 80]), resources, ...(placement ? { placement } : {}),
      createdAt: new Date(Date.UTC(2025, 0, 1) + i).toISOString(),
    }));
  }
  return out;
}
