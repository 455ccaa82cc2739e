import type { GpuCapabilities } from './capabilities.js';
import { leadingNum, num } from './parse.js';
import type { ProbeEnv } from './types.js';

export const ROCM_SMI_ARGS = ['--showproductname', '--showmeminfo', 'vram', '--showuse', '--showtemp', '--json'];

/** rocm-smi renames keys between releases ('Card series' → 'Card Series' → 'Device Name'); look them up loosely. */
function pick(card: Record<string, unknown>, ...names: string[]): string | undefined {
  const lower = new Map(Object.entries(card).map(([k, v]) => [k.toLowerCase().trim(), v]));
  for (const n of names) {
    const v = lower.get(n.toLowerCase());
    if (typeof v === 'string' && v.trim() && !/^(N\/A|unknown)$/i.test(v.trim())) return v.trim();
  }
  return undefined;
}

/**
 * `rocm-smi ... --json`: `{"card0": {"Card Series": "Radeon RX 7900 XT", "VRAM Total Memory (B)": "21458059264", ...}}`.
 * Older versions print warnings before the JSON, so the object is cut out of stdout.
 */
export function parseRocmSmiJson(text: string, warnings: string[]): GpuCapabilities[] {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  let doc: unknown;
  try {
    doc = start >= 0 && end > start ? JSON.parse(text.slice(start, end + 1)) : undefined;
  } catch {
    doc = undefined;
  }
  if (!doc || typeof doc !== 'object') {
    warnings.push(`rocm-smi --json output not understood: ${JSON.stringify(text.trim().slice(0, 120))}`);
    return [];
  }
  const gpus: GpuCapabilities[] = [];
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const index = num(key.match(/^card(\d+)$/)?.[1]);
    if (index === undefined || !value || typeof value !== 'object') continue; // e.g. "system"
    const card = value as Record<string, unknown>;
    const name = pick(card, 'Card Series', 'Device Name', 'Marketing Name', 'Card Model');
    if (!name) warnings.push(`rocm-smi ${key}: no product name`);
    gpus.push({
      index,
      vendor: 'amd',
      name: name ?? `AMD GPU ${key}`,
      uuid: pick(card, 'Unique ID'),
      memoryTotalBytes: num(pick(card, 'VRAM Total Memory (B)')),
      memoryUsedBytes: num(pick(card, 'VRAM Total Used Memory (B)')),
      utilizationPct: leadingNum(pick(card, 'GPU use (%)')),
      temperatureC: leadingNum(pick(card, 'Temperature (Sensor edge) (C)', 'Temperature (Sensor junction) (C)')),
      pciBusId: pick(card, 'PCI Bus'),
      pciId: pick(card, 'Device ID', 'Card Model')?.replace(/^0x/i, '1002:').toLowerCase(),
    });
  }
  return gpus;
}

/** undefined when rocm-smi is not installed. */
export async function probeAmd(env: ProbeEnv, warnings: string[]): Promise<GpuCapabilities[] | undefined> {
  const res = await env.exec('rocm-smi', ROCM_SMI_ARGS, { timeoutMs: 10_000 });
  if (!res) return undefined;
  if (res.code !== 0 && !res.stdout.includes('{')) {
    warnings.push(`rocm-smi exited ${res.code}: ${(res.stdout + res.stderr).trim().split('\n')[0]}`);
    return [];
  }
  return parseRocmSmiJson(res.stdout, warnings);
}
