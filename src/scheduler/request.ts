/**
 * The compiled request: a task's requirements in the shape the filters and scorers read, built
 * once per task document (`compileRequest`) and reused for every device.
 */
import { NexusError } from '../errors/catalogue.js';
import type { Task } from '../resources/job.js';

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
