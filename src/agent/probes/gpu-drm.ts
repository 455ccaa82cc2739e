import type { GpuCapabilities } from './capabilities.js';
import { clean, keyValues, leadingNum, num } from './parse.js';
import type { ProbeEnv } from './types.js';

const DRM_VENDORS: Record<string, GpuCapabilities['vendor']> = { '8086': 'intel', '1002': 'amd', '10de': 'nvidia' };
const VENDOR_NAMES: Record<GpuCapabilities['vendor'], string> = { intel: 'Intel', amd: 'AMD', nvidia: 'NVIDIA', apple: 'Apple' };

/** Intel discrete parts (Arc / DG1 / Battlemage); every other Intel display device is integrated. */
const INTEL_DISCRETE = /^(56|49|e2)/;

/** '00000000:01:00.0' / '0000:01:00.0' → '0:01:00.0' so nvidia-smi, rocm-smi and sysfs addresses compare equal. */
export function normalizePci(addr: string | undefined): string | undefined {
  const m = addr?.trim().toLowerCase().match(/^(?:([0-9a-f]+):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/);
  return m ? `${parseInt(m[1] ?? '0', 16)}:${m[2]}:${m[3]}.${m[4]}` : undefined;
}

export interface DrmCard {
  card: string;
  vendor: GpuCapabilities['vendor'];
  pciId: string;
  pciSlot?: string;
  driver?: string;
}

/** Display-class PCI devices behind /sys/class/drm/card*. */
export async function listDrmCards(env: ProbeEnv): Promise<DrmCard[]> {
  const entries = (await env.readDir('/sys/class/drm')) ?? [];
  const cards: DrmCard[] = [];
  for (const card of entries.filter((e) => /^card\d+$/.test(e))) {
    const dir = `/sys/class/drm/${card}/device`;
    const ue = keyValues((await env.readFile(`${dir}/uevent`)) ?? '', '=');
    const [v, d] = (ue.get('PCI_ID') ?? '').toLowerCase().split(':');
    const vendorId = v || clean(await env.readFile(`${dir}/vendor`))?.replace(/^0x/, '');
    const deviceId = d || clean(await env.readFile(`${dir}/device`))?.replace(/^0x/, '');
    const pciClass = ue.get('PCI_CLASS') ?? clean(await env.readFile(`${dir}/class`))?.replace(/^0x0*/, '');
    const vendor = vendorId ? DRM_VENDORS[vendorId] : undefined;
    if (!vendor || !deviceId || (pciClass && !pciClass.startsWith('3'))) continue; // not a PCI display device we know
    cards.push({ card, vendor, pciId: `${vendorId}:${deviceId}`, pciSlot: ue.get('PCI_SLOT_NAME'), driver: ue.get('DRIVER') });
  }
  return cards;
}

/** GPUs seen only through the kernel's DRM devices (no vendor tool): integrated Intel/AMD, or a card whose tool is missing. */
export async function drmGpus(env: ProbeEnv, cards: DrmCard[]): Promise<GpuCapabilities[]> {
  const gpus: GpuCapabilities[] = [];
  for (const c of cards) {
    const dir = `/sys/class/drm/${c.card}/device`;
    const deviceId = c.pciId.split(':')[1]!;
    gpus.push({
      index: num(c.card.slice(4)) ?? gpus.length,
      vendor: c.vendor,
      name: `${VENDOR_NAMES[c.vendor]} GPU ${c.pciId}`,
      pciId: c.pciId,
      pciBusId: c.pciSlot,
      driver: c.driver,
      integrated: c.vendor === 'intel' ? !INTEL_DISCRETE.test(deviceId) : undefined,
      // amdgpu publishes VRAM and load in sysfs
      memoryTotalBytes: num(await env.readFile(`${dir}/mem_info_vram_total`)),
      memoryUsedBytes: num(await env.readFile(`${dir}/mem_info_vram_used`)),
      utilizationPct: leadingNum(await env.readFile(`${dir}/gpu_busy_percent`)),
    });
  }
  return gpus;
}
