/**
 * The server side of LAN discovery: answers mDNS / DNS-SD queries for `_nexus._tcp.local`.
 * See docs/adr/006-discovery.md.
 */
import { hostname as osHostname, networkInterfaces } from 'node:os';
import type { RemoteInfo } from 'node:dgram';
import type { Answer } from 'dns-packet';
import type mdns from 'multicast-dns';
import { advertisedAddresses } from './addresses.js';
import { announcement, answerQuery, serviceInfo, wantsUnicast, type ServiceInfo } from './records.js';
import { closeSocket, openSocket } from './socket.js';

export interface AnnounceOptions {
  /** The API port agents join (HTTPS). Goes into SRV and `api=` in TXT. */
  readonly port: number;
  /** The cluster's id: TXT `cid=`. Lets an agent pick its cluster when several share a LAN. */
  readonly clusterId: string;
  /** SHA-256 (hex) of the cluster CA certificate's DER, as in join tokens: TXT `pin=`. */
  readonly caPin: string;
  /** DNS-SD instance name; dots become dashes. @default `nexus-<hostname>-<port>` */
  readonly instanceName?: string;
  /**
   * Answer on this interface only: an IPv4 address of this host or an interface name (`eth0`).
   * The A record then carries just that address. @default all interfaces
   */
  readonly interface?: string;
  /** The host label the SRV record targets, as `<label>.local`. @default os.hostname() */
  readonly hostname?: string;
  /** TTL in seconds of every record. @default 120 (RFC 6762 §10) */
  readonly ttl?: number;
  /** mDNS UDP port. Only tests change it (to stay off the real 5353). @default 5353 */
  readonly mdnsPort?: number;
}

export interface Announcer {
  /** The instance name in use (`<instance>._nexus._tcp.local`). */
  readonly instance: string;
  /**
   * Resolves once the socket is bound and the first announcement is sent; rejects if binding
   * failed (e.g. EACCES). Awaiting it is optional: a failed announcer stays silent and `stop()`
   * still works.
   */
  readonly ready: Promise<void>;
  /** Sends goodbye records (TTL 0, RFC 6762 §10.1), closes the socket. Idempotent. */
  stop(): Promise<void>;
}

/** RFC 6762 §8.3: announce at least twice, one second apart. */
const ANNOUNCE_INTERVAL_MS = 1000;
const ANNOUNCE_COUNT = 2;

/**
 * Announces a NEXUS server on the local network: answers `_nexus._tcp.local` PTR queries with PTR
 * → SRV (port, `<host>.local`) + TXT (`v=1`, `cid=`, `pin=`, `api=`) + A records, and sends
 * unsolicited announcements at start. Throws `TypeError` synchronously on invalid options.
 *
 * The announcement is a hint, not a credential: agents must verify the CA pin from their join
 * token, never trust the `pin=` they discovered.
 *
 * @example
 * ```ts
 * import { announce } from './cluster/discovery/index.js';
 * const announcer = announce({ port: 7443, clusterId: cluster.id, caPin: ca.pin });
 * await announcer.ready;        // optional: surfaces bind errors
 * // … on shutdown:
 * await announcer.stop();       // goodbye packets, socket closed
 * ```
 */
export function announce(opts: AnnounceOptions): Announcer {
  const info: ServiceInfo = serviceInfo({ ...opts, hostname: opts.hostname ?? osHostname() });
  const sock = openSocket({ interface: opts.interface, mdnsPort: opts.mdnsPort });
  const m = sock.mdns;
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let stopping: Promise<void> | undefined;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, ms);
    timers.add(t);
  };
  const addresses = (peer?: string) => advertisedAddresses(networkInterfaces(), sock.ifaceAddress, peer);
  const send = (answers: Answer[], additionals: Answer[] = [], rinfo?: mdns.RemoteInfoOutgoing, extra: { id?: number; questions?: mdns.QueryPacket['questions'] } = {}): Promise<void> =>
    new Promise((resolve) => {
      try {
        // Errors (no route, interface gone) are not fatal: the next query or announcement retries.
        m.respond({ answers, additionals, ...extra }, rinfo ?? { port: sock.port }, () => resolve());
      } catch {
        resolve();
      }
    });

  const onQuery = (query: mdns.QueryPacket, rinfo: RemoteInfo) => {
    if (stopped) return;
    try {
      const questions = Array.isArray(query.questions) ? query.questions : [];
      const known = Array.isArray(query.answers) ? query.answers : [];
      // RFC 6762 §6.7: a query from a port other than 5353 is a legacy (one-shot) resolver that
      // wants a plain unicast DNS answer, echoing the id and question. §5.4: a QU question asks
      // for a unicast reply to the querier.
      const legacy = rinfo.port !== sock.port;
      const unicast = legacy || questions.some(wantsUnicast);
      const reply = answerQuery(info, addresses(rinfo.address), questions, known, { unicast: legacy });
      if (!reply) return;
      const to = unicast ? { port: rinfo.port, address: rinfo.address } : undefined;
      const extra = legacy ? { id: query.id, questions } : {};
      // §6: a response with shared records waits 20–120 ms so that answers from many hosts spread.
      const delay = reply.shared && !unicast ? 20 + Math.floor(Math.random() * 100) : 0;
      later(delay, () => void send(reply.answers, reply.additionals, to, extra));
    } catch {
      // A query we cannot make sense of gets no answer.
    }
  };
  m.on('query', onQuery);

  const ready = sock.ready.then(async () => {
    if (stopped) return;
    await send(announcement(info, addresses()));
    for (let i = 1; i < ANNOUNCE_COUNT; i++) later(i * ANNOUNCE_INTERVAL_MS, () => void send(announcement(info, addresses())));
  });
  ready.catch(() => {});

  return {
    instance: info.instance,
    ready,
    stop() {
      if (stopping) return stopping;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      m.removeListener('query', onQuery);
      stopping = (async () => {
        const bound = await sock.ready.then(
          () => true,
          () => false,
        );
        if (bound) await send(announcement(info, addresses(), 0));
        await closeSocket(m);
      })();
      return stopping;
    },
  };
}
