/**
 * The agent side of LAN discovery: browses `_nexus._tcp.local` for a while and returns the servers
 * that answered. See docs/adr/006-discovery.md.
 */
import type { Question } from 'dns-packet';
import type mdns from 'multicast-dns';
import { DiscoveryCache, type DiscoveredServer } from './cache.js';
import { SERVICE_TYPE } from './records.js';
import { closeSocket, openSocket } from './socket.js';

export interface DiscoverOptions {
  /** How long to listen, in ms. @default 3000 */
  readonly timeoutMs?: number;
  /** Keep only servers whose TXT `cid=` equals this. */
  readonly clusterId?: string;
  /** Browse on this interface only: an IPv4 address of this host or an interface name. @default all */
  readonly interface?: string;
  /** Return as soon as this many (matching) servers are complete, before the timeout. */
  readonly limit?: number;
  /** Stops browsing early; resolves with what was found so far. */
  readonly signal?: AbortSignal;
  /** mDNS UDP port. Only tests change it (to stay off the real 5353). @default 5353 */
  readonly mdnsPort?: number;
}

const DEFAULT_TIMEOUT_MS = 3000;
/** RFC 6762 §5.2: at least one second between the first two queries, then doubling. */
const FIRST_RESEND_MS = 1000;

/**
 * Finds NEXUS servers on the local network by mDNS / DNS-SD. Sends a `_nexus._tcp.local` PTR
 * query, resends it at 1 s, 2 s, 4 s… (with known answers, RFC 6762 §7.1), also listens to the
 * servers' unsolicited announcements, and resolves at `timeoutMs` (or `limit`, or `signal`) with
 * one entry per server instance, sorted by instance name. Malformed packets and records are
 * ignored. It rejects only when the mDNS socket cannot be opened (bad `interface`, EACCES).
 *
 * What it returns is untrusted: join only a server whose `caPin` equals the pin in the join
 * token, and let the TLS handshake prove it (the agent verifies the CA pin, not discovery).
 *
 * @example
 * ```ts
 * import { discover } from './cluster/discovery/index.js';
 * const servers = await discover({ timeoutMs: 3000, clusterId, limit: 1 });
 * const server = servers.find((s) => s.caPin === token.pin);
 * if (server) await join(server.addr, token); // e.g. https://192.168.1.20:7443
 * ```
 */
export async function discover(opts: DiscoverOptions = {}): Promise<DiscoveredServer[]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new TypeError(`discovery: timeoutMs must be a non-negative number, got ${String(timeoutMs)}`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new TypeError('discovery: limit must be a positive integer');
  if (opts.signal?.aborted) return [];

  const sock = openSocket({ interface: opts.interface, mdnsPort: opts.mdnsPort });
  const m = sock.mdns;
  const cache = new DiscoveryCache();
  const found = () => cache.servers(Date.now(), opts.clusterId);

  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const timers: NodeJS.Timeout[] = [];

  const onResponse = (packet: mdns.ResponsePacket, rinfo: { address?: string }) => {
    try {
      cache.add(packet, typeof rinfo?.address === 'string' ? rinfo.address : undefined, Date.now());
      if (opts.limit !== undefined && found().length >= opts.limit) finish();
    } catch {
      // Never let a packet break browsing.
    }
  };
  const onAbort = () => finish();

  const query = () => {
    const now = Date.now();
    const questions: Question[] = [{ name: SERVICE_TYPE, type: 'PTR', class: 'IN' }, ...cache.missing(now)];
    try {
      m.query({ questions, answers: cache.knownAnswers(now) }, { port: sock.port }, () => {});
    } catch {
      // Sending failed (no route yet): the next resend tries again.
    }
  };

  try {
    await sock.ready;
  } catch (err) {
    await closeSocket(m);
    throw err;
  }
  try {
    m.on('response', onResponse);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) finish();
    query();
    timers.push(setTimeout(finish, timeoutMs));
    for (let at = FIRST_RESEND_MS; at < timeoutMs; at *= 2) timers.push(setTimeout(query, at));
    await done;
    return found();
  } finally {
    for (const t of timers) clearTimeout(t);
    opts.signal?.removeEventListener('abort', onAbort);
    m.removeListener('response', onResponse);
    await closeSocket(m);
  }
}
