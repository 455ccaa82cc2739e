import { hostname as osHostname, release as osRelease } from 'node:os';
import type { OsCapabilities } from './capabilities.js';
import { darwinSysctl } from './cpu.js';
import { clean, keyValues } from './parse.js';
import { isLiveHost, type Probe, type ProbeEnv } from './types.js';

/** DMI sys_vendor + product_name of hypervisors (Hyper-V says 'Microsoft Corporation Virtual Machine'). */
const VM_DMI = /QEMU|KVM|VMware|VirtualBox|innotek|Xen|Virtual Machine|Google Compute Engine|Parallels|BHYVE|Amazon EC2 (?!.*\.metal)/i;

/** 'container' | 'vm' | 'none', or undefined when nothing readable settles it. */
async function virtualization(env: ProbeEnv): Promise<string | undefined> {
  if ((await env.readFile('/.dockerenv')) !== undefined) return 'container';
  if ((await env.readFile('/run/.containerenv')) !== undefined) return 'container';
  const cgroup = (await env.readFile('/proc/1/cgroup')) ?? '';
  if (/docker|kubepods|containerd|libpod|lxc/.test(cgroup)) return 'container';
  const vendor = clean(await env.readFile('/sys/class/dmi/id/sys_vendor'));
  const product = clean(await env.readFile('/sys/class/dmi/id/product_name'));
  if (VM_DMI.test(`${vendor ?? ''} ${product ?? ''}`)) return 'vm';
  const flags = (await env.readFile('/proc/cpuinfo'))?.match(/^flags\s*:(.*)$/m)?.[1];
  if (flags !== undefined) return /\bhypervisor\b/.test(flags) ? 'vm' : 'none';
  // no x86 flags line: real DMI or a device tree (SBCs) means bare metal
  return vendor || (await env.readFile('/proc/device-tree/model')) !== undefined ? 'none' : undefined;
}

/** Board model: device tree (Pi, Jetson, SBCs), then cpuinfo's Model line, then DMI. */
async function board(env: ProbeEnv): Promise<string | undefined> {
  const dt = clean(await env.readFile('/proc/device-tree/model'));
  if (dt) return dt;
  const cpuModel = (await env.readFile('/proc/cpuinfo'))?.match(/^Model\s*:\s*(.+)$/m)?.[1]?.trim();
  if (cpuModel) return cpuModel;
  const vendor = clean(await env.readFile('/sys/class/dmi/id/sys_vendor'));
  const product = clean(await env.readFile('/sys/class/dmi/id/product_name'));
  return product ? [vendor, product].filter(Boolean).join(' ') : undefined;
}

async function linux(env: ProbeEnv, warnings: string[]): Promise<OsCapabilities> {
  const rel = keyValues((await env.readFile('/etc/os-release')) ?? '', '=');
  const unquote = (v?: string) => v?.replace(/^"(.*)"$/, '$1');
  const live = isLiveHost(env);
  const kernel = clean(await env.readFile('/proc/sys/kernel/osrelease')) ?? (live ? osRelease() : '');
  const hostname = clean(await env.readFile('/proc/sys/kernel/hostname')) ?? (live ? osHostname() : '');
  if (!kernel) warnings.push('kernel release unknown: /proc/sys/kernel/osrelease unreadable');
  if (!hostname) warnings.push('hostname unknown: /proc/sys/kernel/hostname unreadable');
  if (rel.size === 0) warnings.push('/etc/os-release missing; distro unknown');
  return {
    platform: env.platform,
    distro: unquote(rel.get('PRETTY_NAME') ?? rel.get('NAME')),
    release: unquote(rel.get('VERSION_ID')),
    kernel,
    hostname,
    virtualization: await virtualization(env),
    board: await board(env),
  };
}

async function darwin(env: ProbeEnv, warnings: string[]): Promise<OsCapabilities> {
  const live = isLiveHost(env);
  const sw = await env.exec('sw_vers', []);
  const info = keyValues(sw?.stdout ?? '', ':');
  const uname = await env.exec('uname', ['-r']);
  const sysctl = await darwinSysctl(env);
  const vmm = sysctl?.get('kern.hv_vmm_present');
  if (!sw) warnings.push('sw_vers not found; macOS version unknown');
  return {
    platform: env.platform,
    distro: info.get('ProductName') ?? 'macOS',
    release: info.get('ProductVersion'),
    kernel: clean(uname?.stdout) ?? (live ? osRelease() : ''),
    hostname: live ? osHostname() : '',
    virtualization: vmm === '1' ? 'vm' : vmm === '0' ? 'none' : undefined,
    board: clean(sysctl?.get('hw.model')),
  };
}

export const osProbe: Probe<'os'> = {
  name: 'os',
  key: 'os',
  periodic: false,
  async run(env) {
    const warnings: string[] = [];
    if (env.platform === 'linux') return { value: await linux(env, warnings), warnings };
    if (env.platform === 'darwin') return { value: await darwin(env, warnings), warnings };
    const live = isLiveHost(env);
    return {
      value: { platform: env.platform, kernel: live ? osRelease() : '', hostname: live ? osHostname() : '' },
      warnings: [`platform ${env.platform}: only kernel and hostname are probed`],
    };
  },
};
