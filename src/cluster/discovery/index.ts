/**
 * LAN discovery of NEXUS servers over mDNS / DNS-SD (`_nexus._tcp.local`), the companion of the
 * static `--join <addr>`. A server calls `announce()`; an agent calls `discover()` and then joins
 * the server whose `caPin` matches its join token (discovery itself proves nothing).
 * See docs/adr/006-discovery.md.
 *
 * @example
 * ```ts
 * // server
 * const announcer = announce({ port: 7443, clusterId, caPin });
 * process.once('SIGTERM', () => void announcer.stop());
 *
 * // agent (`nexus agent --discover`)
 * const [server] = (await discover({ timeoutMs: 3000, clusterId, limit: 1 })).filter((s) => s.caPin === token.pin);
 * ```
 */
export { announce, type AnnounceOptions, type Announcer } from './announce.js';
export { discover, type DiscoverOptions } from './browse.js';
export { type DiscoveredServer } from './cache.js';
export { SERVICE_TYPE, MDNS_PORT, MDNS_GROUP, TXT_VERSION } from './records.js';
