/**
 * DNS-SD over mDNS for `_nexus._tcp.local` (RFC 6762 / RFC 6763), without sockets: the records a
 * server announces, the answer to a query, and the browser's cache that turns response packets
 * into servers. Everything here is pure so it can be tested with crafted packets; `announce.ts`
 * and `browse.ts` put it on the wire. See docs/adr/006-discovery.md.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import type { Answer, Question } from 'dns-packet';

/** The DNS-SD service type NEXUS servers register. */
export const SERVICE_TYPE = '_nexus._tcp.local';
/** RFC 6763 §9 service-type enumeration name. */
export const SERVICE_ENUMERATION = '_services._dns-sd._udp.local';
/** The mDNS port and IPv4 group (RFC 6762 §3). */
export const MDNS_PORT = 5353;
export const MDNS_GROUP = '224.0.0.251';
/** The TXT schema version this code writes and accepts (`v=1`). */
export const TXT_VERSION = '1';
/** RFC 6762 §10: 120 s for records that carry a host name (SRV, A); we use it for all. */
export const DEFAULT_TTL = 120;
/** RFC 6762 §6.7: legacy unicast answers carry TTLs no higher than 10 s. */
export const LEGACY_UNICAST_TTL = 10;

const PIN_RE = /^[0-9a-f]{64}$/;
const MAX_LABEL_BYTES = 63;
/** A TXT string is at most 255 bytes (RFC 6763 §6.1). */
const MAX_TXT_STRING = 255;
/** Bounds on what one browse keeps, so a flood of packets cannot grow memory without limit. */
const MAX_INSTANCES = 256;
const MAX_HOSTS = 256;
const MAX_ADDRESSES_PER_HOST = 16;

/** A server as found on the LAN. Everything here is a *claim* by whoever answered: the agent must
 * still check `caPin` against the pin in its join token before it trusts the server. */
export interface DiscoveredServer {
  /** The API base URL to join, `https://IP:PORT` (the preferred address). */
  readonly addr: string;
  /** The mDNS host name the SRV record points at, e.g. `node-1.local`. */
  readonly host: string;
  /** The preferred IPv4 address (the one in `addr`): the packet's source if it is advertised. */
  readonly address: string;
  /** Every IPv4 address advertised for `host`. */
  readonly addresses: readonly string[];
  /** The API port (from the SRV record). */
  readonly port: number;
  /** `cid=` from TXT. */
  readonly clusterId: string;
  /** `pin=` from TXT: SHA-256 of the cluster CA certificate's DER, lower-case hex. */
  readonly caPin: string;
  /** The DNS-SD instance name (the first label of `<instance>._nexus._tcp.local`). */
  readonly instance: string;
}

/** What a server announces. Built by `serviceInfo()` from `announce()`'s options. */
export interface ServiceInfo {
  /** The instance label (no dots, ≤ 63 bytes). */
  readonly instance: string;
  /** The host name the SRV points at, `<label>.local`. */
  readonly host: string;
  readonly port: number;
  readonly clusterId: string;
  readonly caPin: string;
  /** Seconds, for every record. */
  readonly ttl: number;
}

export function isValidPin(pin: unknown): pin is string {
  return typeof pin === 'string' && PIN_RE.test(pin);
}

function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536;
}

/** Truncates to `max` UTF-8 bytes without splitting a character. */
function clampBytes(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/** An instance label: any text but dots (the wire library splits names on them), ≤ 63 bytes. */
export function instanceLabel(name: string): string {
  const label = clampBytes(name.replace(/\./g, '-').trim(), MAX_LABEL_BYTES);
  if (label.length === 0) throw new TypeError('discovery: the instance name is empty');
  return label;
}

/** `my.host.example` → `my-host` style DNS label for `<label>.local`. */
export function hostLabel(hostname: string): string {
  const first = hostname.split('.')[0] ?? '';
  const label = first.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, MAX_LABEL_BYTES);
  return label.length > 0 ? label : 'nexus';
}

/** Validates announce options and fixes the names. Throws `TypeError` on bad input. */
export function serviceInfo(opts: { port: number; clusterId: string; caPin: string; instanceName?: string; hostname: string; ttl?: number }): ServiceInfo {
  if (!isPort(opts.port)) throw new TypeError(`discovery: port must be an integer in 1..65535, got ${String(opts.port)}`);
  const caPin = typeof opts.caPin === 'string' ? opts.caPin.toLowerCase() : '';
  if (!isValidPin(caPin)) throw new TypeError('discovery: caPin must be a SHA-256 in hex (64 characters)');
  if (typeof opts.clusterId !== 'string' || opts.clusterId.length === 0) throw new TypeError('discovery: clusterId is required');
  if (Buffer.byteLength(`cid=${opts.clusterId}`) > MAX_TXT_STRING) throw new TypeError('discovery: clusterId is too long for a TXT string');
  const ttl = opts.ttl ?? DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new TypeError(`discovery: ttl must be an integer number of seconds in 1..86400, got ${String(ttl)}`);
  const host = `${hostLabel(opts.hostname)}.local`;
  const instance = instanceLabel(opts.instanceName ?? `nexus-${hostLabel(opts.hostname)}-${opts.port}`);
  return { instance, host, port: opts.port, clusterId: opts.clusterId, caPin, ttl };
}

export function instanceFqdn(instance: string): string {
  return `${instance}.${SERVICE_TYPE}`;
}

/** The TXT strings, RFC 6763 §6 `key=value` form. */
export function txtStrings(info: ServiceInfo): string[] {
  return [`v=${TXT_VERSION}`, `cid=${info.clusterId}`, `pin=${info.caPin}`, `api=${info.port}`];
}

// ---- addresses --------------------------------------------------------------------------------

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

// ---- responding -------------------------------------------------------------------------------

/** Records of one announcement. `ttl` 0 gives the RFC 6762 §10.1 goodbye. */
export interface Records {
  readonly ptr: Answer;
  readonly srv: Answer;
  readonly txt: Answer;
  readonly a: Answer[];
  /** `_services._dns-sd._udp.local PTR _nexus._tcp.local` (RFC 6763 §9). */
  readonly enumeration: Answer;
}

/**
 * Builds the service's records. Unique records (SRV, TXT, A) carry the cache-flush bit (RFC 6762
 * §10.2); shared ones (PTR) do not. `unicast` (a legacy unicast reply) drops the flush bit and caps
 * the TTL (RFC 6762 §6.7).
 */
export function buildRecords(info: ServiceInfo, addresses: readonly string[], opts: { ttl?: number; unicast?: boolean } = {}): Records {
  const ttl = opts.unicast ? Math.min(opts.ttl ?? info.ttl, LEGACY_UNICAST_TTL) : (opts.ttl ?? info.ttl);
  const flush = !opts.unicast;
  const name = instanceFqdn(info.instance);
  return {
    ptr: { name: SERVICE_TYPE, type: 'PTR', class: 'IN', ttl, data: name },
    srv: { name, type: 'SRV', class: 'IN', ttl, flush, data: { priority: 0, weight: 0, port: info.port, target: info.host } },
    txt: { name, type: 'TXT', class: 'IN', ttl, flush, data: txtStrings(info) },
    a: addresses.map((ip) => ({ name: info.host, type: 'A', class: 'IN', ttl, flush, data: ip })),
    enumeration: { name: SERVICE_ENUMERATION, type: 'PTR', class: 'IN', ttl, data: SERVICE_TYPE },
  };
}

/** Every record, as an unsolicited announcement (RFC 6762 §8.3) or, with ttl 0, a goodbye. */
export function announcement(info: ServiceInfo, addresses: readonly string[], ttl?: number): Answer[] {
  const r = buildRecords(info, addresses, ttl === undefined ? {} : { ttl });
  return [r.ptr, r.srv, r.txt, ...r.a, r.enumeration];
}

/** dns-packet turns a QU question's class (0x8001) into this string instead of setting a flag. */
const QU_CLASS = 'UNKNOWN_32769';

/** Whether a question asks for a unicast reply (RFC 6762 §5.4). */
export function wantsUnicast(q: Question): boolean {
  return (q.class as string | undefined) === QU_CLASS;
}

function classMatches(q: Question): boolean {
  const c = q.class as string | undefined;
  return c === undefined || c === 'IN' || c === 'ANY' || c === QU_CLASS;
}

function sameName(a: unknown, b: string): boolean {
  return typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
}

function recordKey(a: Answer): string {
  const d = (a as { data?: unknown }).data;
  let data: string;
  if (typeof d === 'string') data = d.toLowerCase();
  else if (Array.isArray(d)) data = d.map((x) => (Buffer.isBuffer(x) ? x.toString('latin1') : String(x))).join('\u0000');
  else if (d && typeof d === 'object' && 'target' in d) data = `${String((d as { port?: unknown }).port)} ${String((d as { target?: unknown }).target).toLowerCase()}`;
  else data = '';
  return `${a.name.toLowerCase()}|${a.type}|${data}`;
}

/** An answer to one query: what goes in the answer and additional sections. */
export interface Reply {
  readonly answers: Answer[];
  readonly additionals: Answer[];
  /** True when the answer holds a shared (PTR) record, which RFC 6762 §6 delays 20–120 ms. */
  readonly shared: boolean;
}

/**
 * What to answer to `questions`, or undefined when none is about us. `knownAnswers` (the query's
 * answer section) suppresses records the asker already holds with at least half their TTL
 * (RFC 6762 §7.1). Handles `_nexus._tcp.local` PTR, the instance's SRV/TXT, the host's A and the
 * RFC 6763 §9 enumeration; ANY matches every type.
 */
export function answerQuery(info: ServiceInfo, addresses: readonly string[], questions: readonly Question[], knownAnswers: readonly Answer[] = [], opts: { unicast?: boolean } = {}): Reply | undefined {
  const r = buildRecords(info, addresses, opts);
  const fqdn = instanceFqdn(info.instance);
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  let shared = false;
  const want = (q: Question, type: string) => (q.type as string) === type || (q.type as string) === 'ANY'; // dns-packet decodes type 255 as 'ANY'
  for (const q of questions) {
    if (!q || typeof q !== 'object' || !classMatches(q)) continue;
    if (sameName(q.name, SERVICE_TYPE) && want(q, 'PTR')) {
      answers.push(r.ptr);
      additionals.push(r.srv, r.txt, ...r.a);
      shared = true;
    } else if (sameName(q.name, SERVICE_ENUMERATION) && want(q, 'PTR')) {
      answers.push(r.enumeration);
      shared = true;
    } else if (sameName(q.name, fqdn)) {
      if (want(q, 'SRV')) answers.push(r.srv);
      if (want(q, 'TXT')) answers.push(r.txt);
      if (want(q, 'SRV')) additionals.push(...r.a);
    } else if (sameName(q.name, info.host) && want(q, 'A')) {
      answers.push(...r.a);
    }
  }
  const known = new Set<string>();
  for (const k of knownAnswers) {
    if (!k || typeof k !== 'object' || typeof k.name !== 'string') continue;
    const ttl = (k as { ttl?: unknown }).ttl;
    const mine = [r.ptr, r.srv, r.txt, ...r.a, r.enumeration].find((x) => recordKey(x) === recordKey(k));
    if (mine && typeof ttl === 'number' && ttl >= ((mine as { ttl?: number }).ttl ?? 0) / 2) known.add(recordKey(k));
  }
  const seen = new Set<string>(known);
  const uniq = (list: Answer[]) =>
    list.filter((a) => {
      const key = recordKey(a);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  const ans = uniq(answers);
  if (ans.length === 0) return undefined;
  return { answers: ans, additionals: uniq(additionals), shared: shared && ans.some((a) => a.type === 'PTR') };
}

// ---- browsing ---------------------------------------------------------------------------------

/** Parses TXT data into `key=value` pairs; undefined if it is not TXT-shaped. Keys are lower-cased
 * and the first occurrence of a key wins (RFC 6763 §6.4). */
export function parseTxt(data: unknown): Map<string, string> | undefined {
  const list = Array.isArray(data) ? data : [data];
  const out = new Map<string, string>();
  for (const item of list) {
    let s: string;
    if (Buffer.isBuffer(item)) s = item.toString('utf8');
    else if (typeof item === 'string') s = item;
    else return undefined;
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const key = s.slice(0, eq).toLowerCase();
    if (!out.has(key)) out.set(key, s.slice(eq + 1));
  }
  return out;
}

interface Timed {
  expires: number;
}
interface SrvEntry extends Timed {
  port: number;
  target: string;
}
interface TxtEntry extends Timed {
  clusterId: string;
  caPin: string;
}
interface PtrEntry extends Timed {
  /** The instance FQDN as received (case kept). */
  name: string;
  /** Source address of the last packet that told us about this instance. */
  source?: string;
}

function ttlOf(a: Answer): number | undefined {
  const t = (a as { ttl?: unknown }).ttl;
  return typeof t === 'number' && Number.isFinite(t) && t >= 0 ? t : undefined;
}

function isInstanceName(name: string): boolean {
  const lower = name.toLowerCase();
  const suffix = `.${SERVICE_TYPE}`;
  return lower.endsWith(suffix) && lower.length > suffix.length;
}

/**
 * The browser's cache: feed it every response packet (`add`), read complete servers (`servers`).
 * Malformed, unrelated or oversized input is ignored; nothing here throws on packet contents.
 */
export class DiscoveryCache {
  private readonly ptr = new Map<string, PtrEntry>();
  private readonly srv = new Map<string, SrvEntry>();
  private readonly txt = new Map<string, TxtEntry>();
  private readonly a = new Map<string, Map<string, { expires: number; received: number }>>();

  /** Adds the answer and additional records of one response. `now` is in ms. */
  add(packet: unknown, source: string | undefined, now: number): void {
    if (!packet || typeof packet !== 'object') return;
    const p = packet as { answers?: unknown; additionals?: unknown };
    const records = [...(Array.isArray(p.answers) ? p.answers : []), ...(Array.isArray(p.additionals) ? p.additionals : [])];
    const flushedHosts = new Set<string>();
    for (const rec of records) {
      try {
        this.addRecord(rec as Answer, source, now, flushedHosts);
      } catch {
        // A record whose shape the checks below did not foresee: skip it, keep the rest.
      }
    }
  }

  private addRecord(rec: Answer, source: string | undefined, now: number, flushedHosts: Set<string>): void {
    if (!rec || typeof rec !== 'object' || typeof rec.name !== 'string') return;
    const cls = (rec as { class?: unknown }).class;
    if (cls !== undefined && cls !== 'IN') return;
    const ttl = ttlOf(rec);
    if (ttl === undefined) return;
    const expires = now + ttl * 1000;
    const data = (rec as { data?: unknown }).data;
    const name = rec.name.toLowerCase();
    switch (rec.type) {
      case 'PTR': {
        if (name !== SERVICE_TYPE || typeof data !== 'string' || !isInstanceName(data)) return;
        const key = data.toLowerCase();
        if (ttl === 0) {
          this.ptr.delete(key);
          return;
        }
        if (!this.ptr.has(key) && this.ptr.size >= MAX_INSTANCES) return;
        this.ptr.set(key, { name: data, expires, ...(source ? { source } : {}) });
        return;
      }
      case 'SRV': {
        if (!isInstanceName(name)) return;
        if (ttl === 0) {
          this.srv.delete(name);
          return;
        }
        const d = data as { port?: unknown; target?: unknown } | undefined;
        if (!d || typeof d !== 'object' || !isPort(d.port) || typeof d.target !== 'string' || d.target.length === 0 || d.target === '.') return;
        if (!this.srv.has(name) && this.srv.size >= MAX_INSTANCES) return;
        this.srv.set(name, { port: d.port, target: d.target.toLowerCase(), expires });
        const ptr = this.ptr.get(name);
        if (ptr && source) ptr.source = source;
        return;
      }
      case 'TXT': {
        if (!isInstanceName(name)) return;
        if (ttl === 0) {
          this.txt.delete(name);
          return;
        }
        const kv = parseTxt(data);
        if (!kv || kv.get('v') !== TXT_VERSION) return;
        const clusterId = kv.get('cid');
        const caPin = kv.get('pin')?.toLowerCase();
        if (!clusterId || !isValidPin(caPin)) return;
        if (!this.txt.has(name) && this.txt.size >= MAX_INSTANCES) return;
        this.txt.set(name, { clusterId, caPin, expires });
        return;
      }
      case 'A': {
        if (!isIPv4(data)) return;
        let set = this.a.get(name);
        if (ttl === 0) {
          set?.delete(data);
          return;
        }
        // Cache-flush (RFC 6762 §10.2): addresses of this host received more than a second ago
        // expire in one second; newer ones stay (several responders may share a host name).
        if ((rec as { flush?: unknown }).flush === true && set && !flushedHosts.has(name)) {
          flushedHosts.add(name);
          for (const entry of set.values()) if (entry.received < now - 1000) entry.expires = Math.min(entry.expires, now + 1000);
        }
        if (!set) {
          if (this.a.size >= MAX_HOSTS) return;
          set = new Map();
          this.a.set(name, set);
        }
        if (!set.has(data) && set.size >= MAX_ADDRESSES_PER_HOST) return;
        set.set(data, { expires, received: now });
        return;
      }
      default:
        return;
    }
  }

  private addressesOf(host: string, now: number): string[] {
    const set = this.a.get(host);
    if (!set) return [];
    return [...set].filter(([, e]) => e.expires > now).map(([ip]) => ip);
  }

  /** Complete, unexpired servers, one per instance, sorted by instance; `clusterId` filters. */
  servers(now: number, clusterId?: string): DiscoveredServer[] {
    const out: DiscoveredServer[] = [];
    for (const [key, ptr] of this.ptr) {
      if (ptr.expires <= now) continue;
      const srv = this.srv.get(key);
      const txt = this.txt.get(key);
      if (!srv || srv.expires <= now || !txt || txt.expires <= now) continue;
      if (clusterId !== undefined && txt.clusterId !== clusterId) continue;
      const addresses = this.addressesOf(srv.target, now);
      if (addresses.length === 0) continue;
      const address = ptr.source && addresses.includes(ptr.source) ? ptr.source : addresses[0]!;
      out.push({
        addr: `https://${address}:${srv.port}`,
        host: srv.target,
        address,
        addresses,
        port: srv.port,
        clusterId: txt.clusterId,
        caPin: txt.caPin,
        instance: ptr.name.slice(0, ptr.name.length - SERVICE_TYPE.length - 1),
      });
    }
    return out.sort((x, y) => (x.instance < y.instance ? -1 : x.instance > y.instance ? 1 : 0));
  }

  /** Questions for instances we know of but cannot complete yet (lost or truncated additionals). */
  missing(now: number): Question[] {
    const qs: Question[] = [];
    for (const [key, ptr] of this.ptr) {
      if (ptr.expires <= now) continue;
      const srv = this.srv.get(key);
      if (!srv || srv.expires <= now) qs.push({ name: ptr.name, type: 'SRV', class: 'IN' });
      const txt = this.txt.get(key);
      if (!txt || txt.expires <= now) qs.push({ name: ptr.name, type: 'TXT', class: 'IN' });
      if (srv && srv.expires > now && this.addressesOf(srv.target, now).length === 0) qs.push({ name: srv.target, type: 'A', class: 'IN' });
    }
    return qs;
  }

  /** PTR records of complete instances, for known-answer suppression in repeated queries (§7.1). */
  knownAnswers(now: number): Answer[] {
    const complete = new Set(this.servers(now).map((s) => instanceFqdn(s.instance).toLowerCase()));
    const out: Answer[] = [];
    for (const [key, ptr] of this.ptr) {
      if (!complete.has(key)) continue;
      out.push({ name: SERVICE_TYPE, type: 'PTR', class: 'IN', ttl: Math.max(0, Math.floor((ptr.expires - now) / 1000)), data: ptr.name });
    }
    return out;
  }
}
