/**
 * DNS-SD over mDNS for `_nexus._tcp.local` (RFC 6762 / RFC 6763), without sockets: the names and
 * TXT strings a server announces, its records, and the answer to a query. Everything here is pure
 * so it can be tested with crafted packets; the addresses to advertise are in `addresses.ts`, the
 * browser's cache that turns response packets into servers in `cache.ts`, and `announce.ts` and
 * `browse.ts` put it on the wire. See docs/adr/006-discovery.md.
 */
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

export function isPort(n: unknown): n is number {
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
