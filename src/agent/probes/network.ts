import { networkInterfaces } from 'node:os';
import type { NetworkCapabilities } from './capabilities.js';
import { clean, num } from './parse.js';
import { isLiveHost, type Probe, type ProbeEnv } from './types.js';

const ARPHRD_LOOPBACK = 772;

/** `ip -j addr` → interface name → CIDR addresses. */
export function parseIpJson(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return out;
  }
  if (!Array.isArray(parsed)) return out;
  for (const link of parsed as { ifname?: unknown; addr_info?: { local?: unknown; prefixlen?: unknown }[] }[]) {
    if (typeof link?.ifname !== 'string') continue;
    const addrs = (Array.isArray(link.addr_info) ? link.addr_info : [])
      .filter((a) => typeof a?.local === 'string')
      .map((a) => `${a.local as string}/${String(a.prefixlen)}`);
    out.set(link.ifname, addrs);
  }
  return out;
}

function liveAddresses(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    out.set(name, (infos ?? []).map((i) => i.cidr ?? i.address));
  }
  return out;
}

async function addresses(env: ProbeEnv, warnings: string[]): Promise<Map<string, string[]>> {
  if (isLiveHost(env)) return liveAddresses();
  if (env.platform !== 'linux') return new Map(); // fixtures of other platforms carry no address source
  const ip = await env.exec('ip', ['-j', 'addr']);
  if (!ip || ip.code !== 0) {
    warnings.push(ip ? `ip -j addr exited ${ip.code}` : 'ip not found; addresses unknown');
    return new Map();
  }
  const map = parseIpJson(ip.stdout);
  if (map.size === 0) warnings.push('ip -j addr output not understood');
  return map;
}

async function sysfsInterface(env: ProbeEnv, name: string, addrs: string[]): Promise<NetworkCapabilities | undefined> {
  const dir = `/sys/class/net/${name}`;
  if (num(await env.readFile(`${dir}/type`)) === ARPHRD_LOOPBACK) return undefined;
  const mac = clean(await env.readFile(`${dir}/address`));
  const speed = num(await env.readFile(`${dir}/speed`)); // -1 or unreadable when link is down/virtual
  const wireless =
    (await env.readDir(`${dir}/wireless`)) !== undefined || (await env.readFile(`${dir}/phy80211/name`)) !== undefined;
  return {
    name,
    addresses: addrs,
    mac: mac && mac !== '00:00:00:00:00:00' ? mac : undefined,
    speedMbps: speed !== undefined && speed > 0 ? speed : undefined,
    wireless,
    up: clean(await env.readFile(`${dir}/operstate`)) === 'up',
    mtu: num(await env.readFile(`${dir}/mtu`)),
    virtual: (await env.readFile(`${dir}/device/uevent`)) === undefined,
  };
}

export const networkProbe: Probe<'network'> = {
  name: 'network',
  key: 'network',
  periodic: false,
  async run(env) {
    const warnings: string[] = [];
    const addrs = await addresses(env, warnings);
    const names = env.platform === 'linux' ? await env.readDir('/sys/class/net') : undefined;
    if (!names) {
      // no sysfs (macOS, or /sys not mounted): addresses are all we know
      if (env.platform === 'linux') warnings.push('/sys/class/net unreadable');
      const value = [...addrs].filter(([n]) => n !== 'lo' && n !== 'lo0').map(([name, a]) => ({ name, addresses: a }));
      return { value, warnings };
    }
    const value: NetworkCapabilities[] = [];
    for (const name of names) {
      const nic = await sysfsInterface(env, name, addrs.get(name) ?? []);
      if (nic) value.push(nic);
    }
    return { value, warnings };
  },
};
