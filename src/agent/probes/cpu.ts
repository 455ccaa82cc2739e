import type { CpuCapabilities } from './capabilities.js';
import { blocks, clean, keyValues, num } from './parse.js';
import { type Probe, type ProbeEnv, readForPlatform } from './types.js';

/** ISA extensions that matter for AI inference (x86 /proc/cpuinfo names, arm64 hwcap names). */
export const AI_CPU_FLAGS = [
  'avx', 'avx2', 'fma', 'f16c', 'avx_vnni', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'avx512_fp16',
  'amx_tile', 'amx_bf16', 'amx_int8',
  'neon', 'asimd', 'asimdhp', 'asimddp', 'bf16', 'i8mm', 'sve', 'sve2',
] as const;
const AI = new Set<string>(AI_CPU_FLAGS);

const X86_VENDORS: Record<string, string> = { GenuineIntel: 'Intel', AuthenticAMD: 'AMD', HygonGenuine: 'Hygon' };
const ARM_IMPLEMENTERS: Record<string, string> = {
  '0x41': 'ARM', '0x42': 'Broadcom', '0x43': 'Cavium', '0x48': 'HiSilicon', '0x4e': 'NVIDIA',
  '0x51': 'Qualcomm', '0x61': 'Apple', '0xc0': 'Ampere',
};
/** ARM Ltd. (implementer 0x41) part numbers → core names. */
const ARM_PARTS: Record<string, string> = {
  '0xd03': 'Cortex-A53', '0xd04': 'Cortex-A35', '0xd05': 'Cortex-A55', '0xd07': 'Cortex-A57', '0xd08': 'Cortex-A72',
  '0xd09': 'Cortex-A73', '0xd0a': 'Cortex-A75', '0xd0b': 'Cortex-A76', '0xd0c': 'Neoverse-N1', '0xd0d': 'Cortex-A77',
  '0xd40': 'Neoverse-V1', '0xd41': 'Cortex-A78', '0xd44': 'Cortex-X1', '0xd46': 'Cortex-A510', '0xd47': 'Cortex-A710',
  '0xd48': 'Cortex-X2', '0xd49': 'Neoverse-N2', '0xd4f': 'Neoverse-V2', '0xd80': 'Cortex-A520', '0xd81': 'Cortex-A720',
};

function aiFlags(raw: string[]): string[] {
  const set = new Set(raw.map((f) => f.toLowerCase()).filter((f) => AI.has(f)));
  if (set.has('asimd')) set.add('neon'); // arm64 Advanced SIMD is NEON
  return AI_CPU_FLAGS.filter((f) => set.has(f));
}

async function freqMhz(env: ProbeEnv, file: string): Promise<number | undefined> {
  const khz = num(await env.readFile(`/sys/devices/system/cpu/cpu0/cpufreq/${file}`));
  return khz !== undefined && khz > 0 ? Math.round(khz / 1000) : undefined;
}

export function parseCpuinfo(text: string, arch: string): Omit<CpuCapabilities, 'baseMhz' | 'maxMhz'> & { nominalMhz?: number } {
  const cpus = blocks(text).filter((b) => b.has('processor'));
  const first = cpus[0] ?? new Map<string, string>();
  const implementer = first.get('CPU implementer')?.toLowerCase();
  const part = first.get('CPU part')?.toLowerCase();
  let model = first.get('model name') ?? first.get('cpu model') ?? '';
  let vendor = first.get('vendor_id') ?? '';
  vendor = X86_VENDORS[vendor] ?? vendor;
  if (implementer) {
    vendor ||= ARM_IMPLEMENTERS[implementer] ?? implementer;
    const core = implementer === '0x41' && part ? ARM_PARTS[part] : undefined;
    if (!model || /^ARMv\d/.test(model)) model = core ? `${vendor} ${core}` : model || `${vendor} CPU part ${part ?? '?'}`;
  }
  const cores = new Set(cpus.map((b) => `${b.get('physical id') ?? '0'}:${b.get('core id') ?? b.get('processor')}`));
  const rawFlags = (first.get('flags') ?? first.get('Features') ?? '').split(/\s+/).filter(Boolean);
  const ghz = model.match(/@\s*([\d.]+)\s*GHz/i)?.[1];
  return {
    model,
    vendor,
    arch,
    physicalCores: cpus.length ? cores.size : 0,
    logicalCores: cpus.length,
    flags: aiFlags(rawFlags),
    nominalMhz: ghz ? Math.round(Number(ghz) * 1000) : undefined,
  };
}

async function linux(env: ProbeEnv, warnings: string[]): Promise<CpuCapabilities | undefined> {
  const text = await env.readFile('/proc/cpuinfo');
  if (text === undefined) {
    warnings.push('/proc/cpuinfo unreadable');
    return undefined;
  }
  const { nominalMhz, ...cpu } = parseCpuinfo(text, env.arch);
  if (cpu.logicalCores === 0) warnings.push('/proc/cpuinfo lists no processors');
  if (!cpu.model) warnings.push('CPU model not found in /proc/cpuinfo');
  return {
    ...cpu,
    baseMhz: (await freqMhz(env, 'base_frequency')) ?? nominalMhz,
    maxMhz: await freqMhz(env, 'cpuinfo_max_freq'),
  };
}

/** `sysctl name...` prints `name: value` lines (unknown names go to stderr). */
export const DARWIN_SYSCTLS = [
  'machdep.cpu.brand_string', 'hw.model', 'hw.physicalcpu', 'hw.logicalcpu', 'hw.cpufrequency', 'hw.cpufrequency_max',
  'hw.memsize', 'vm.swapusage', 'hw.optional.neon', 'hw.optional.arm.FEAT_BF16', 'hw.optional.arm.FEAT_I8MM',
  'hw.optional.arm.FEAT_DotProd', 'hw.optional.avx1_0', 'hw.optional.avx2_0', 'hw.optional.fma', 'hw.optional.f16c',
  'hw.optional.avx512f', 'hw.optional.avx512vnni', 'hw.optional.avx512bf16', 'kern.hv_vmm_present',
];
const DARWIN_FLAGS: Record<string, string> = {
  'hw.optional.neon': 'asimd', 'hw.optional.arm.FEAT_BF16': 'bf16', 'hw.optional.arm.FEAT_I8MM': 'i8mm',
  'hw.optional.arm.FEAT_DotProd': 'asimddp', 'hw.optional.avx1_0': 'avx', 'hw.optional.avx2_0': 'avx2',
  'hw.optional.fma': 'fma', 'hw.optional.f16c': 'f16c', 'hw.optional.avx512f': 'avx512f',
  'hw.optional.avx512vnni': 'avx512_vnni', 'hw.optional.avx512bf16': 'avx512_bf16',
};

export async function darwinSysctl(env: ProbeEnv): Promise<Map<string, string> | undefined> {
  const res = await env.exec('sysctl', DARWIN_SYSCTLS);
  return res ? keyValues(res.stdout, ':') : undefined;
}

async function darwin(env: ProbeEnv, warnings: string[]): Promise<CpuCapabilities | undefined> {
  const s = await darwinSysctl(env);
  if (!s) {
    warnings.push('sysctl not found');
    return undefined;
  }
  const model = clean(s.get('machdep.cpu.brand_string')) ?? '';
  const logical = num(s.get('hw.logicalcpu')) ?? 0;
  const hz = num(s.get('hw.cpufrequency_max')) ?? num(s.get('hw.cpufrequency'));
  if (!model) warnings.push('machdep.cpu.brand_string missing from sysctl output');
  if (!logical) warnings.push('hw.logicalcpu missing from sysctl output');
  return {
    model,
    vendor: model.startsWith('Apple') ? 'Apple' : (model.match(/^(Intel|AMD)/)?.[1] ?? ''),
    arch: env.arch,
    physicalCores: num(s.get('hw.physicalcpu')) ?? logical,
    logicalCores: logical,
    maxMhz: hz ? Math.round(hz / 1e6) : undefined,
    flags: aiFlags([
      ...Object.entries(DARWIN_FLAGS).filter(([k]) => s.get(k) === '1').map(([, f]) => f),
      ...(env.arch === 'arm64' ? ['asimd'] : []), // AArch64 makes Advanced SIMD (NEON) mandatory
    ]),
  };
}

export const cpuProbe: Probe<'cpu'> = {
  name: 'cpu',
  key: 'cpu',
  periodic: false,
  async run(env) {
    const warnings: string[] = [];
    const value = await readForPlatform(env, { linux, darwin }, warnings);
    return { value, warnings };
  },
};
