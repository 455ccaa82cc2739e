/**
 * The browser's side of DNS-SD, pure like `records.ts`: TXT parsing and the cache that turns
 * response packets into servers (and says which questions would complete the ones it half knows).
 * `browse.ts` feeds it from the wire.
 */
import type { Answer, Question } from 'dns-packet';
import { isIPv4 } from './addresses.js';
import { SERVICE_TYPE, TXT_VERSION, instanceFqdn, isPort, isValidPin } from './records.js';

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
