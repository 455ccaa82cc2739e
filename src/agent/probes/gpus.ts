import type { GpuCapabilities } from './capabilities.js';
import { probeAmd } from './gpu-amd.js';
import { probeApple } from './gpu-apple.js';
import { drmGpus, listDrmCards, normalizePci } from './gpu-drm.js';
import { probeNvidia } from './gpu-nvidia.js';
import type { Probe, ProbeEnv } from './types.js';

async function linux(env: ProbeEnv, warnings: string[]): Promise<GpuCapabilities[]> {
  const [nvidia, amd, cards] = await Promise.all([probeNvidia(env, warnings), probeAmd(env, warnings), listDrmCards(env)]);
  const reported = [...(nvidia ?? []), ...(amd ?? [])];
  const seenSlots = new Set(reported.map((g) => normalizePci(g.pciBusId)).filter(Boolean));

  // kernel-visible cards that no vendor tool described
  const rest = cards.filter((c) => {
    if (seenSlots.has(normalizePci(c.pciSlot))) return false;
    if (c.vendor === 'nvidia' && nvidia?.length) return false;
    if (c.vendor === 'amd' && amd?.length && amd.every((g) => !g.pciBusId)) return false; // rocm-smi without bus ids
    return true;
  });
  if (!nvidia && rest.some((c) => c.vendor === 'nvidia')) {
    warnings.push('NVIDIA GPU present but nvidia-smi not found; memory and compute capability unknown');
  }
  if (!amd && rest.some((c) => c.vendor === 'amd' && c.driver === 'amdgpu')) {
    warnings.push('AMD GPU present but rocm-smi not found; reading amdgpu sysfs only');
  }
  return [...reported, ...(await drmGpus(env, rest))];
}

export const gpusProbe: Probe<'gpus'> = {
  name: 'gpus',
  key: 'gpus',
  // utilisation, temperature and memory use change; the scheduler wants them fresh
  periodic: true,
  async run(env) {
    const warnings: string[] = [];
    if (env.platform === 'linux') return { value: await linux(env, warnings), warnings };
    if (env.platform === 'darwin') return { value: await probeApple(env, warnings), warnings };
    return { warnings: [`platform ${env.platform}: GPUs not probed yet`] };
  },
};
