import type { GpuCapabilities } from './capabilities.js';
import { num } from './parse.js';
import type { ProbeEnv } from './types.js';
import { darwinSysctl } from './cpu.js';

interface SpDisplay {
  _name?: string;
  sppci_model?: string;
  sppci_cores?: string;
  spdisplays_vendor?: string;
  sppci_device_type?: string;
  spdisplays_vram?: string;
  spdisplays_vram_shared?: string;
}

const VENDORS: [RegExp, GpuCapabilities['vendor']][] = [
  [/apple|0x106b/i, 'apple'], [/nvidia|0x10de/i, 'nvidia'], [/amd|ati|0x1002/i, 'amd'], [/intel|0x8086/i, 'intel'],
];

/** '1536 MB' / '16 GB' → bytes */
function sizeBytes(text: string | undefined): number | undefined {
  const m = text?.match(/^([\d.]+)\s*(MB|GB)$/i);
  return m ? Number(m[1]) * (m[2]!.toUpperCase() === 'GB' ? 1024 ** 3 : 1024 ** 2) : undefined;
}

/** `system_profiler SPDisplaysDataType -json`; Apple Silicon GPUs get the system memory as unified memory. */
export function parseSpDisplays(text: string, unifiedBytes: number | undefined, warnings: string[]): GpuCapabilities[] {
  let items: unknown;
  try {
    items = (JSON.parse(text) as { SPDisplaysDataType?: unknown }).SPDisplaysDataType;
  } catch {
    items = undefined;
  }
  if (!Array.isArray(items)) {
    warnings.push('system_profiler SPDisplaysDataType output not understood');
    return [];
  }
  const gpus: GpuCapabilities[] = [];
  for (const d of items as SpDisplay[]) {
    if (d.sppci_device_type !== undefined && d.sppci_device_type !== 'spdisplays_gpu') continue;
    const name = d.sppci_model ?? d._name;
    if (!name) continue;
    const vendor = VENDORS.find(([re]) => re.test(d.spdisplays_vendor ?? name))?.[1];
    if (!vendor) {
      warnings.push(`unknown GPU vendor for ${name}`);
      continue;
    }
    const apple = vendor === 'apple';
    gpus.push({
      index: gpus.length,
      vendor,
      name,
      coreCount: num(d.sppci_cores),
      integrated: apple ? true : undefined,
      unifiedMemory: apple ? true : undefined,
      memoryTotalBytes: apple ? unifiedBytes : (sizeBytes(d.spdisplays_vram) ?? sizeBytes(d.spdisplays_vram_shared)),
    });
  }
  return gpus;
}

export async function probeApple(env: ProbeEnv, warnings: string[]): Promise<GpuCapabilities[]> {
  const res = await env.exec('system_profiler', ['SPDisplaysDataType', '-json'], { timeoutMs: 15_000 });
  if (!res || res.code !== 0) {
    warnings.push(res ? `system_profiler exited ${res.code}` : 'system_profiler not found');
    return [];
  }
  const memsize = num((await darwinSysctl(env))?.get('hw.memsize'));
  return parseSpDisplays(res.stdout, memsize, warnings);
}
