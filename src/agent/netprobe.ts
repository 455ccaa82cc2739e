/**
 * Network probes an agent runs for the topology (ADR 009): round-trip time to the server and to
 * peer devices (TCP connect time by default, or an HTTP GET /healthz round trip), and now and then
 * bandwidth from the server (GET /v1/topology/probe?bytes=N). Results go to the server with
 * `client.topology.report` (POST /v1/topology/samples); `measureAndReport` does one whole round.
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { NexusClient } from '../client/client.js';
import { NexusError } from '../errors/catalogue.js';
import { MAX_PROBE_BYTES, SERVER_NODE, type TopologyReport, type TopologyReportResult, type TopologySample } from '../resources/topology.js';

export interface RttTarget {
  host: string;
  port: number;
}

export interface RttOptions {
  /** `tcp`: time to a TCP connection (one network round trip, no server work). `http`: GET /healthz on a warm keep-alive connection. @default 'tcp' */
  method?: 'tcp' | 'http';
  /** HTTPS for method `http`. @default false */
  tls?: boolean;
  /** PEM CA for `tls`. */
  ca?: string;
  /** Per sample. @default 2000 */
  timeoutMs?: number;
  /**
   * TCP only: count a refused connection (the host answered with a reset) as a sample: it took one
   * round trip as well, so a peer need not listen on the port. @default true
   */
  countRefused?: boolean;
  /** Pause between samples, milliseconds. @default 0 */
  gapMs?: number;
}

export interface RttStats {
  /** `host:port`. */
  target: string;
  /** Every successful sample in milliseconds, in the order taken. */
  samples: number[];
  /** Samples that timed out or failed. */
  failures: number;
  min: number;
  median: number;
  p90: number;
  max: number;
}

export interface BandwidthOptions {
  /** Bearer token (the probe endpoint is under /v1). */
  token?: string;
  ca?: string;
  /** The whole download. @default 30000 */
  timeoutMs?: number;
}

export interface BandwidthResult {
  bytes: number;
  /** From the response headers to the last byte (connection set-up and request excluded). */
  seconds: number;
  mbps: number;
  /** From sending the request to the response headers. */
  firstByteMs: number;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** min / median / p90 / max of `samples` (median of an even count: the mean of the middle two). */
export function summarize(target: string, samples: number[], failures: number): RttStats {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { target, samples, failures, min: s[0] ?? NaN, median, p90: percentile(s, 90), max: s[s.length - 1] ?? NaN };
}

function tcpConnectMs(address: string, port: number, timeoutMs: number, countRefused: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const sock = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      const ms = nowMs() - t0;
      clearTimeout(timer);
      sock.destroy();
      resolve(ms);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      const ms = nowMs() - t0;
      clearTimeout(timer);
      sock.destroy();
      if (countRefused && err.code === 'ECONNREFUSED') resolve(ms);
      else reject(err);
    });
  });
}

function httpGetMs(agent: http.Agent, lib: typeof http | typeof https, url: URL, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = lib.get(url, { agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode && res.statusCode < 500 ? resolve(nowMs() - t0) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
  });
}

/**
 * Measures the round-trip time to `target`, `samples` times one after another. The host name is
 * resolved once, before timing. Throws NEXUS_E_NETPROBE when no sample succeeds.
 *
 * @example
 * const { median, p90 } = await measureRtt({ host: '10.0.0.2', port: 7070 }, 5);
 */
export async function measureRtt(target: RttTarget, samples = 5, opts: RttOptions = {}): Promise<RttStats> {
  const name = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const n = Math.max(1, Math.floor(samples));
  let address: string;
  try {
    address = net.isIP(target.host) ? target.host : (await lookup(target.host)).address;
  } catch (err) {
    throw new NexusError('NEXUS_E_NETPROBE', { target: name, detail: `cannot resolve ${target.host}: ${(err as Error).message}` }, { cause: err });
  }
  const ok: number[] = [];
  let failures = 0;
  let lastError: unknown;
  if ((opts.method ?? 'tcp') === 'tcp') {
    for (let i = 0; i < n; i++) {
      if (i > 0 && opts.gapMs) await sleep(opts.gapMs);
      try {
        ok.push(await tcpConnectMs(address, target.port, timeoutMs, opts.countRefused ?? true));
      } catch (err) {
        failures++;
        lastError = err;
      }
    }
  } else {
    const lib = opts.tls ? https : http;
    const agent = opts.tls ? new https.Agent({ keepAlive: true, maxSockets: 1, ...(opts.ca ? { ca: opts.ca } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
    const url = new URL(`${opts.tls ? 'https' : 'http'}://${name}/healthz`);
    if (address !== target.host) url.hostname = address.includes(':') ? `[${address}]` : address;
    try {
      // Warm-up: pays for the TCP (and TLS) handshake, so the timed requests are one round trip each.
      await httpGetMs(agent, lib, url, timeoutMs).catch((err) => {
        lastError = err;
      });
      for (let i = 0; i < n; i++) {
        if (i > 0 && opts.gapMs) await sleep(opts.gapMs);
        try {
          ok.push(await httpGetMs(agent, lib, url, timeoutMs));
        } catch (err) {
          failures++;
          lastError = err;
        }
      }
    } finally {
      agent.destroy();
    }
  }
  if (ok.length === 0) {
    throw new NexusError('NEXUS_E_NETPROBE', { target: name, detail: `all ${n} samples failed (last: ${(lastError as Error)?.message ?? 'unknown'})` }, { cause: lastError });
  }
  return summarize(name, ok, failures);
}

/**
 * Downloads `bytes` (capped at MAX_PROBE_BYTES) from `url` (the server's /v1/topology/probe, see
 * `client.topology.probeUrl()`) and returns the throughput. Throws NEXUS_E_NETPROBE on failure.
 */
export function measureBandwidth(url: string | URL, bytes: number, opts: BandwidthOptions = {}): Promise<BandwidthResult> {
  const want = Math.max(1, Math.min(MAX_PROBE_BYTES, Math.floor(bytes)));
  const u = new URL(url);
  u.searchParams.set('bytes', String(want));
  const lib = u.protocol === 'https:' ? https : http;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const fail = (detail: string, cause?: unknown) => new NexusError('NEXUS_E_NETPROBE', { target: `${u.origin}${u.pathname}`, detail }, cause === undefined ? {} : { cause });
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = lib.get(u, {
      agent: false,
      timeout: timeoutMs,
      headers: { accept: 'application/octet-stream', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
      ...(opts.ca && lib === https ? { ca: opts.ca } : {}),
    }, (res) => {
      const t1 = nowMs();
      let got = 0;
      if (res.statusCode !== 200) {
        const body: Buffer[] = [];
        res.on('data', (c: Buffer) => body.length < 8 && body.push(c));
        res.on('end', () => {
          clearTimeout(overall);
          let code = '';
          try {
            code = (JSON.parse(Buffer.concat(body).toString('utf8')) as { error?: { code?: string } }).error?.code ?? '';
          } catch { /* not JSON */ }
          reject(fail(`HTTP ${res.statusCode}${code ? ` ${code}` : ''}`));
        });
        return;
      }
      res.on('data', (c: Buffer) => {
        got += c.length;
      });
      res.once('end', () => {
        clearTimeout(overall);
        if (got !== want) return reject(fail(`got ${got} of ${want} bytes`));
        const seconds = Math.max((nowMs() - t1) / 1000, 1e-6);
        resolve({ bytes: got, seconds, mbps: (got * 8) / seconds / 1e6, firstByteMs: t1 - t0 });
      });
      res.once('error', (err) => reject(fail(err.message, err)));
    });
    // `timeout` is idle time on the socket; this bounds the whole download.
    const overall = setTimeout(() => req.destroy(new Error(`not done within ${timeoutMs} ms`)), timeoutMs);
    overall.unref();
    req.once('timeout', () => req.destroy(new Error(`no data for ${timeoutMs} ms`)));
    req.once('error', (err) => {
      clearTimeout(overall);
      reject(fail(err.message, err));
    });
  });
}

export interface Peer extends RttTarget {
  /** The peer's device id. */
  id: string;
}

export interface RoundOptions {
  client: NexusClient;
  /** This agent's device id (the report's `from`). */
  deviceId: string;
  /** Where to measure the server. @default host and port of the client's address */
  server?: RttTarget;
  /** Peer devices to measure (for example from GET /v1/devices, those with an `address`). */
  peers?: Peer[];
  /** Samples per target. @default 5 */
  samples?: number;
  /** Also measure bandwidth from the server with this many bytes. @default none */
  bandwidthBytes?: number;
  rtt?: RttOptions;
}

export interface RoundResult {
  report: TopologyReport;
  /** Absent when nothing could be measured (nothing is sent then). */
  result?: TopologyReportResult;
  /** Targets that could not be measured this round. */
  errors: { to: string; error: Error }[];
}

/**
 * One topology round for an agent: RTT to the server and every peer, bandwidth from the server
 * when `bandwidthBytes` is set, then one POST /v1/topology/samples. Call it on a timer (every
 * minute or so; bandwidth every tenth round or so).
 */
export async function measureAndReport(o: RoundOptions): Promise<RoundResult> {
  const addr = new URL(o.client.transport.options.addr);
  const server = o.server ?? { host: addr.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(addr.port || (addr.protocol === 'https:' ? 443 : 80)) };
  const samples: TopologySample[] = [];
  const errors: RoundResult['errors'] = [];
  const at = () => new Date().toISOString();
  const targets: Peer[] = [{ id: SERVER_NODE, ...server }, ...(o.peers ?? []).filter((p) => p.id !== o.deviceId)];
  for (const t of targets) {
    try {
      const stats = await measureRtt(t, o.samples ?? 5, o.rtt);
      samples.push({ to: t.id, rttMs: round3(stats.median), at: at() });
    } catch (err) {
      errors.push({ to: t.id, error: err as Error });
    }
  }
  if (o.bandwidthBytes) {
    try {
      const bw = await measureBandwidth(o.client.topology.probeUrl(), o.bandwidthBytes, {
        ...(o.client.transport.options.token ? { token: o.client.transport.options.token } : {}),
        ...(o.client.transport.options.ca ? { ca: o.client.transport.options.ca } : {}),
      });
      const s = samples.find((x) => x.to === SERVER_NODE);
      if (s) s.bandwidthMbps = round3(bw.mbps);
    } catch (err) {
      errors.push({ to: SERVER_NODE, error: err as Error });
    }
  }
  const report: TopologyReport = { from: o.deviceId, samples };
  if (samples.length === 0) return { report, errors };
  return { report, result: await o.client.topology.report(report), errors };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
