/** Opens the `multicast-dns` socket both sides use. */
import { networkInterfaces } from 'node:os';
import mdns from 'multicast-dns';
import { resolveInterface } from './addresses.js';
import { MDNS_PORT } from './records.js';

export interface SocketOptions {
  /** IPv4 address or interface name; all interfaces when absent. */
  readonly interface?: string | undefined;
  /** UDP port; 5353 unless a test isolates itself on another. */
  readonly mdnsPort?: number | undefined;
}

export interface OpenSocket {
  readonly mdns: mdns.MulticastDNS;
  /** The resolved interface address, when one was asked for. */
  readonly ifaceAddress: string | undefined;
  /** The port packets are sent to and received on. */
  readonly port: number;
  /** Resolves once bound; rejects with the bind error (EADDRINUSE, EACCES). */
  readonly ready: Promise<void>;
}

/**
 * With an interface, the group is joined and multicast is sent on that interface's address, but
 * the socket is still bound to 0.0.0.0: on Linux a socket bound to a unicast address never
 * receives datagrams sent to 224.0.0.251. That is what makes it work inside a network namespace
 * (or on a multi-homed host) without a multicast route.
 */
export function openSocket(opts: SocketOptions): OpenSocket {
  const port = opts.mdnsPort ?? MDNS_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`discovery: mdnsPort must be in 1..65535, got ${String(port)}`);
  const ifaceAddress = opts.interface === undefined ? undefined : resolveInterface(networkInterfaces(), opts.interface);
  const m = mdns({ port, reuseAddr: true, loopback: true, ...(ifaceAddress ? { interface: ifaceAddress, bind: '0.0.0.0' } : {}) });
  const ready = new Promise<void>((resolve, reject) => {
    m.once('ready', resolve);
    // multicast-dns only emits 'error' for bind failures (EACCES, EADDRINUSE); everything else,
    // undecodable packets included, is a 'warning'.
    m.on('error', reject);
  });
  ready.catch(() => {});
  m.on('warning', () => {});
  return { mdns: m, ifaceAddress, port, ready };
}

/** Destroys the socket; resolves when it is closed. Safe to call twice. */
export function closeSocket(m: mdns.MulticastDNS): Promise<void> {
  return new Promise((resolve) => {
    try {
      m.destroy(() => resolve());
    } catch {
      resolve();
    }
  });
}
