import type { GpuCapabilities } from './capabilities.js';
import { leadingNum, MIB } from './parse.js';
import type { ProbeEnv } from './types.js';

/** Fields asked of `nvidia-smi --query-gpu`; the answer is parsed by header name, so order and extras don't matter. */
export const NVIDIA_FIELDS = [
  'index', 'uuid', 'name', 'memory.total', 'memory.used', 'compute_cap', 'driver_version',
  'utilization.gpu', 'temperature.gpu', 'pci.bus_id',
] as const;

/** '[N/A]', '[Not Supported]', '[Requested functionality has been deprecated]', 'N/A', '' → undefined */
const present = (v: string | undefined) => (!v || v === 'N/A' || /^\[.*\]$/.test(v) ? undefined : v);

/**
 * CSV from `nvidia-smi --query-gpu=... --format=csv[,nounits]`, header included.
 * Header cells look like `memory.total [MiB]`; values may carry units ('16376 MiB')
 * or not (nounits). Rows whose cell count differs from the header are reported, not guessed at.
 */
export function parseNvidiaCsv(text: string, warnings: string[]): GpuCapabilities[] {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().replace(/\s*\[.*\]$/, ''));
  if (!header.includes('name') || !header.includes('index')) {
    warnings.push(`nvidia-smi --query-gpu output not understood: ${JSON.stringify((lines[0] ?? '').slice(0, 120))}`);
    return [];
  }
  const gpus: GpuCapabilities[] = [];
  for (const line of lines.slice(1)) {
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== header.length) {
      warnings.push(`nvidia-smi row has ${cells.length} fields, header has ${header.length}: ${JSON.stringify(line.slice(0, 120))}`);
      continue;
    }
    const row = new Map(header.map((h, i) => [h, present(cells[i])]));
    const index = leadingNum(row.get('index'));
    const name = row.get('name');
    if (index === undefined || !name) {
      warnings.push(`nvidia-smi row without index/name: ${JSON.stringify(line.slice(0, 120))}`);
      continue;
    }
    const mib = (k: string) => {
      const n = leadingNum(row.get(k));
      return n === undefined ? undefined : n * MIB;
    };
    gpus.push({
      index,
      vendor: 'nvidia',
      name,
      uuid: row.get('uuid'),
      memoryTotalBytes: mib('memory.total'),
      memoryUsedBytes: mib('memory.used'),
      computeCapability: row.get('compute_cap'),
      driver: row.get('driver_version'),
      utilizationPct: leadingNum(row.get('utilization.gpu')),
      temperatureC: leadingNum(row.get('temperature.gpu')),
      pciBusId: row.get('pci.bus_id'),
    });
  }
  return gpus;
}

export interface NvidiaListing {
  gpus: { index: number; name: string; uuid?: string }[];
  mig: { parentIndex: number; parentUuid?: string; profile: string; device: number; uuid: string }[];
}

/**
 * `nvidia-smi -L`:
 *   GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-7fdaf0a5-...)
 *     MIG 1g.10gb     Device  0: (UUID: MIG-feb88891-...)
 */
export function parseNvidiaList(text: string): NvidiaListing {
  const out: NvidiaListing = { gpus: [], mig: [] };
  for (const line of text.split('\n')) {
    const gpu = line.match(/^GPU (\d+): (.+?)(?: \(UUID: ([^)]+)\))?\s*$/);
    if (gpu) {
      out.gpus.push({ index: Number(gpu[1]), name: gpu[2]!, uuid: gpu[3] });
      continue;
    }
    const mig = line.match(/^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: ([^)]+)\)/);
    const parent = out.gpus[out.gpus.length - 1];
    if (mig && parent) {
      out.mig.push({ parentIndex: parent.index, parentUuid: parent.uuid, profile: mig[1]!, device: Number(mig[2]), uuid: mig[3]! });
    }
  }
  return out;
}

/**
 * Runs the query; an older driver rejects fields it does not know (470.x:
 * 'Field "compute_cap" is not a valid field to query.'), so drop those and retry.
 */
async function query(env: ProbeEnv, warnings: string[]) {
  let fields: string[] = [...NVIDIA_FIELDS];
  for (let attempt = 0; attempt < 3; attempt++) {
    const res = await env.exec('nvidia-smi', [`--query-gpu=${fields.join(',')}`, '--format=csv,nounits'], { timeoutMs: 10_000 });
    const bad = res && res.code !== 0 ? (res.stdout + res.stderr).match(/Field "([^"]+)" is not a valid field/)?.[1] : undefined;
    if (!bad || !fields.includes(bad)) return res;
    warnings.push(`nvidia-smi does not know field ${bad}; retrying without it`);
    fields = fields.filter((f) => f !== bad);
  }
  return undefined;
}

/** undefined when nvidia-smi is not installed. */
export async function probeNvidia(env: ProbeEnv, warnings: string[]): Promise<GpuCapabilities[] | undefined> {
  const res = await query(env, warnings);
  const list = await env.exec('nvidia-smi', ['-L'], { timeoutMs: 10_000 });
  if (!res && !list) return undefined;
  let gpus: GpuCapabilities[] = [];
  if (res?.code === 0) gpus = parseNvidiaCsv(res.stdout, warnings);
  else if (res) warnings.push(`nvidia-smi --query-gpu exited ${res.code}: ${(res.stdout + res.stderr).trim().split('\n')[0]}`);
  else warnings.push('nvidia-smi --query-gpu not answered; GPU details unknown');

  const listing = list?.code === 0 ? parseNvidiaList(list.stdout) : { gpus: [], mig: [] };
  // -L is the inventory: keep GPUs the query missed (it failed) and fill gaps
  for (const g of listing.gpus) {
    const known = gpus.find((q) => (g.uuid && q.uuid === g.uuid) || q.index === g.index);
    if (!known) gpus.push({ index: g.index, vendor: 'nvidia', name: g.name, uuid: g.uuid });
    else known.uuid ??= g.uuid; // a query without the uuid column (older callers, fixtures)
  }
  for (const m of listing.mig) {
    const parent = gpus.find((g) => g.index === m.parentIndex);
    gpus.push({
      index: m.parentIndex,
      vendor: 'nvidia',
      name: `${parent?.name ?? 'NVIDIA GPU'} MIG ${m.profile}`,
      uuid: m.uuid,
      migParent: m.parentUuid ?? parent?.uuid,
      migProfile: m.profile,
      computeCapability: parent?.computeCapability,
      driver: parent?.driver,
      pciBusId: parent?.pciBusId,
    });
  }
  if (gpus.length === 0 && res?.code === 0) warnings.push('nvidia-smi is installed but reported no GPUs');
  return gpus;
}
