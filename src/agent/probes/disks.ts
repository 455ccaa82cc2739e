import { statfs } from 'node:fs/promises';
import type { DiskCapabilities } from './capabilities.js';
import { num } from './parse.js';
import { isLiveHost, type Probe, type ProbeEnv } from './types.js';

/** Filesystems that are not storage a workload could use. */
const PSEUDO_FS = new Set([
  'proc', 'sysfs', 'devtmpfs', 'devpts', 'tmpfs', 'ramfs', 'cgroup', 'cgroup2', 'securityfs', 'pstore', 'bpf',
  'tracefs', 'debugfs', 'mqueue', 'hugetlbfs', 'configfs', 'fusectl', 'autofs', 'binfmt_misc', 'efivarfs',
  'selinuxfs', 'nsfs', 'rpc_pipefs', 'squashfs', 'fuse.gvfsd-fuse', 'fuse.portal', 'fuse.lxcfs',
  'devfs', 'nullfs',
]);

interface Mount { device: string; mount: string; filesystem: string }

/** /proc/mounts escapes spaces etc. as octal (\040). */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMounts(text: string): Mount[] {
  const seen = new Set<string>();
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const [device, mount, filesystem] = line.split(/\s+/).map(unescape);
    if (!device || !mount || !filesystem || PSEUDO_FS.has(filesystem)) continue;
    if (seen.has(mount)) continue;
    seen.add(mount);
    out.push({ device, mount, filesystem });
  }
  return out;
}

/** GNU `df -B1 --output=source,fstype,size,avail,target` → sizes by mount point. */
export function parseDf(text: string): Map<string, { totalBytes: number; freeBytes: number }> {
  const out = new Map<string, { totalBytes: number; freeBytes: number }>();
  for (const line of text.split('\n').slice(1)) {
    const m = line.trim().match(/^(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(.+)$/);
    if (m) out.set(m[5]!, { totalBytes: Number(m[3]), freeBytes: Number(m[4]) });
  }
  return out;
}

/** /dev/sda1 → sda, /dev/nvme0n1p2 → nvme0n1, /dev/mmcblk0p2 → mmcblk0; undefined for mapper/loop/virtual devices. */
export function blockDeviceName(device: string): string | undefined {
  const m = device.match(/^\/dev\/([a-z][a-z0-9]*)$/);
  if (!m || /^(loop|dm-|ram|zram)/.test(m[1]!)) return undefined;
  const name = m[1]!;
  if (/^(nvme\d+n\d+|mmcblk\d+)p\d+$/.test(name)) return name.replace(/p\d+$/, '');
  return /^(sd|vd|xvd|hd)[a-z]+\d+$/.test(name) ? name.replace(/\d+$/, '') : name;
}

async function rotational(env: ProbeEnv, device: string): Promise<boolean | undefined> {
  const name = blockDeviceName(device);
  if (!name) return undefined;
  const v = num(await env.readFile(`/sys/block/${name}/queue/rotational`));
  return v === undefined ? undefined : v === 1;
}

async function sizes(env: ProbeEnv, mounts: Mount[], warnings: string[]) {
  if (isLiveHost(env)) {
    const out = new Map<string, { totalBytes: number; freeBytes: number }>();
    for (const { mount } of mounts) {
      try {
        const s = await statfs(mount);
        out.set(mount, { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize });
      } catch (err) {
        warnings.push(`statfs ${mount}: ${(err as Error).message}`);
      }
    }
    return out;
  }
  const df = await env.exec('df', ['-B1', '--output=source,fstype,size,avail,target']);
  if (!df || df.code !== 0) warnings.push(df ? `df exited ${df.code}: ${df.stderr.trim()}` : 'df not found; disk sizes unknown');
  return parseDf(df?.stdout ?? '');
}

export const disksProbe: Probe<'disks'> = {
  name: 'disks',
  key: 'disks',
  periodic: true,
  async run(env) {
    const warnings: string[] = [];
    if (env.platform !== 'linux') return { warnings: [`platform ${env.platform}: disks not probed yet`] };
    const text = await env.readFile('/proc/mounts');
    if (text === undefined) return { warnings: ['/proc/mounts unreadable'] };
    const mounts = parseMounts(text);
    const bySize = await sizes(env, mounts, warnings);
    const disks: DiskCapabilities[] = [];
    for (const m of mounts) {
      const size = bySize.get(m.mount);
      if (!size || size.totalBytes <= 0) continue;
      disks.push({ ...m, ...size, rotational: await rotational(env, m.device) });
    }
    return { value: disks, warnings };
  },
};
