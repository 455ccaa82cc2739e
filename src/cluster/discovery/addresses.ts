/**
 * The IPv4 side of discovery, pure like `records.ts`: which of this host's addresses a server
 * advertises in its A records (to a given asker), and which address an `interface` option means.
 */
import type { NetworkInterfaceInfo } from 'node:os';

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function isIPv4(ip: unknown): ip is string {
  return typeof ip === 'string' && ipv4ToInt(ip) !== undefined;
}

function sameSubnet(a: string, b: string, netmask: string): boolean {
  const x = ipv4ToInt(a);
  const y = ipv4ToInt(b);
  const m = ipv4ToInt(netmask);
  if (x === undefined || y === undefined || m === undefined) return false;
  // `>>> 0` keeps the AND unsigned.
  return ((x & m) >>> 0) === ((y & m) >>> 0);
}

type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

function ipv4Entries(ifaces: Interfaces): NetworkInterfaceInfo[] {
  const out: NetworkInterfaceInfo[] = [];
  for (const list of Object.values(ifaces)) {
    for (const i of list ?? []) if (i.family === 'IPv4' || (i.family as unknown) === 4) out.push(i);
  }
  return out;
}

/**
 * The IPv4 addresses to advertise in A records. With `iface` (an address this host has), just that
 * one. Otherwise every non-loopback IPv4 address; loopback only when there is nothing else. With
 * `peer` (the source of a query), the addresses on the peer's subnet when there are any (RFC 6762
 * §15: answer with the addresses of the link the query came in on).
 */
export function advertisedAddresses(ifaces: Interfaces, iface?: string, peer?: string): string[] {
  if (iface) return [iface];
  const all = ipv4Entries(ifaces);
  const external = all.filter((i) => !i.internal && !i.address.startsWith('127.'));
  const pool = external.length > 0 ? external : all;
  if (peer) {
    const local = pool.filter((i) => sameSubnet(i.address, peer, i.netmask));
    if (local.length > 0) return [...new Set(local.map((i) => i.address))];
  }
  return [...new Set(pool.map((i) => i.address))];
}

/**
 * Resolves an `interface` option, either an IPv4 address this host has or an interface name, to
 * the IPv4 address that multicast membership and sending use. Throws `TypeError` if it is neither.
 */
export function resolveInterface(ifaces: Interfaces, iface: string): string {
  if (isIPv4(iface)) {
    if (iface === '0.0.0.0') throw new TypeError('discovery: interface 0.0.0.0 is not an interface; leave it out to use all');
    return iface;
  }
  const byName = (ifaces[iface] ?? []).find((i) => i.family === 'IPv4' || (i.family as unknown) === 4);
  if (!byName) throw new TypeError(`discovery: no IPv4 interface named or addressed "${iface}" (is it up, with carrier, and addressed?)`);
  return byName.address;
}
