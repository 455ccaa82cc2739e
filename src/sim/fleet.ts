/**
 * A fleet of simulated NEXUS agents in one process: each device joins through the real flow
 * (`GET /v1/join/ca`, pin check, `POST /v1/join` with a join token) and gets its own device
 * credential, then heartbeats over real sockets at the interval the server announces, spread over
 * 85–100 % of it like the real agent (src/agent/agent.ts). Every heartbeat's latency is recorded.
 * Devices can be "killed" (they stop heartbeating, as after SIGKILL) and watched until the server
 * shows them `down`.
 *
 * Heartbeats go as the agent sends them (`mode: 'stream'`, the default): one connection per device
 * carrying a heartbeat stream (src/sim/stream.ts, docs/adr/011). `mode: 'request'` sends one
 * `POST …/heartbeat` per beat instead, as agents do against a server without streams.
 *
 * Differences from real agents, on purpose (see bench/README.md):
 *  - in request mode connections are shared: `sockets` keep-alive connections (default 256) carry
 *    every device's requests (joins always go that way);
 *  - the CA is fetched and pinned once per fleet, not once per device;
 *  - no probing and no registration after the join (optional: `register`), no task runner, no
 *    topology probes: heartbeats only, with a fixed utilization body.
 *
 * Only `node:` modules and this folder: no NEXUS code, so it measures the server from outside.
 */
import { HttpError, HttpPool, type HttpCallback } from './http.js';
import { caPinOf, fetchCaUnverified, parseJoinToken } from './join-token.js';
import { percentiles, Samples, type Percentiles } from './stats.js';
import { DeviceStream, upgradeHead, type StreamTarget } from './stream.js';

export interface FleetOptions {
  /** `https://host:port` (or `http://127.0.0.1:port` for a dev server). */
  server: string;
  /** A join token: `NX1<pin>::<id>.<secret>` (the pin is checked) or `nxt_<id>.<secret>`. */
  joinToken: string;
  /** PEM of the cluster CA; fetched from the server and checked against the pin when absent. */
  ca?: string;
  /** Keep-alive connections shared by all devices. @default 256 */
  sockets?: number;
  /** Joins in flight at once. @default 64 */
  joinConcurrency?: number;
  /** Joins started per second at most (devices arriving over time, not all at once). @default unlimited */
  joinRate?: number;
  /** Heartbeat interval until the server names one, ms. @default 1000 */
  heartbeatMs?: number;
  /** A request without an answer after this long counts as failed. @default 5000 (the agent's) */
  timeoutMs?: number;
  /** A stream whose oldest heartbeat has no answer for this long is dropped. @default 15000 (the agent's) */
  streamTimeoutMs?: number;
  /** Device names are `<prefix>-<n>`. @default 'sim' */
  namePrefix?: string;
  /** Also register each device after joining (`POST /v1/devices`), as `nexus agent` does. @default false */
  register?: boolean;
  /** Heartbeats over one stream per device (as agents do) or one request per beat. @default 'stream' */
  mode?: 'stream' | 'request';
}

export interface SimDevice {
  readonly n: number;
  readonly id: string;
  readonly name: string;
  /** The device credential (`nxt_…`), bound to `id`. */
  readonly token: string;
  alive: boolean;
  killedAt?: number;
  intervalMs: number;
  timer?: NodeJS.Timeout;
  /** The heartbeat request, rendered once (request mode). */
  request?: Buffer;
  /** Its heartbeat stream (stream mode), and the beats sent on streams so far. */
  stream?: DeviceStream;
  beats?: number;
}

export interface JoinResult {
  joined: number;
  failed: number;
  seconds: number;
  perSecond: number;
  errors: Record<string, number>;
}

export interface WindowStats {
  seconds: number;
  /** Heartbeats answered 2xx in the window. */
  ok: number;
  /** Of `ok`: heartbeats written on a stream without asking for an answer (no latency measured). */
  unanswered: number;
  /** Heartbeats that failed (by code: HTTP status, API error code or socket error). */
  failed: number;
  errors: Record<string, number>;
  perSecond: number;
  /** What the alive devices should send: alive × 1000 / (0.925 × interval). */
  expectedPerSecond: number;
  alive: number;
  /** Heartbeat latency (ms), from "due" to the whole answer: includes waiting for a shared socket. */
  latency: Percentiles;
  /** The same from writing on the socket to the answer (server + network only). */
  wire: Percentiles;
  /** The interval the server announced last (ms). */
  intervalMs: number;
}

export interface Detection {
  id: string;
  name: string;
  /** Seconds from the kill until the server showed `unreachable` (undefined: never seen). */
  unreachableS?: number;
  /** Seconds from the kill until the server showed `down` (undefined: not within the timeout). */
  downS?: number;
}

const INTERVAL = Buffer.from('"intervalMs":');
/** As the agent (src/agent/agent.ts): a stream is dropped when an answer is this late. */
const STREAM_TIMEOUT_MS = 15_000;
const HEARTBEAT_BODY = Buffer.from(JSON.stringify({
  utilization: { cpuPct: 17.5, memoryUsedBytes: 3_221_225_472, memoryTotalBytes: 8_589_934_592 },
}));
/** The same heartbeat as one line of a stream. */
const HEARTBEAT_LINE = Buffer.concat([HEARTBEAT_BODY, Buffer.from('\n')]);
const HEARTBEAT_LINE_ACK = Buffer.from(JSON.stringify({ ...JSON.parse(HEARTBEAT_BODY.toString()), ack: true }) + '\n');
/** As src/agent/agent.ts: one heartbeat in this many on a stream asks for an answer. */
const ACK_EVERY = 5;

function errorCode(err: unknown): string {
  return err instanceof HttpError ? err.code : (err as NodeJS.ErrnoException)?.code ?? 'ERROR';
}

export class DeviceFleet {
  readonly devices: SimDevice[] = [];
  private readonly pool: HttpPool;
  private readonly readPool: HttpPool;
  /** For watchDown's small reads: short timeouts, so a round never outlives the deadline by much. */
  private readonly watchPool: HttpPool;
  private readonly sweeper: NodeJS.Timeout;
  private readonly bearer: string;
  private running = false;
  private windowStart = performance.now();
  private ok = 0;
  /** Of `ok`: beats written on a stream without an answer asked (no latency to measure). */
  private written = 0;
  private failed = 0;
  private errors: Record<string, number> = {};
  private readonly lat = new Samples();
  private readonly wire = new Samples();
  private lastInterval: number;

  private constructor(
    readonly options: FleetOptions & { ca?: string },
    bearer: string,
  ) {
    this.bearer = bearer;
    const common = { url: options.server, ...(options.ca ? { ca: options.ca } : {}), timeoutMs: options.timeoutMs ?? 5000 };
    this.pool = new HttpPool({ ...common, sockets: options.sockets ?? 256 });
    this.readPool = new HttpPool({ ...common, sockets: 8, timeoutMs: 30_000 });
    this.watchPool = new HttpPool({ ...common, sockets: 8, timeoutMs: 2000 });
    this.lastInterval = options.heartbeatMs ?? 1000;
    // Streams whose oldest heartbeat has no answer in time fail and reconnect (like the pool's sweep).
    this.sweeper = setInterval(() => {
      const t = performance.now();
      for (const d of this.devices) d.stream?.expire(t);
    }, 500);
    this.sweeper.unref();
  }

  /** Checks the server against the join token's pin (fetching the CA), then opens the pools. */
  static async connect(options: FleetOptions): Promise<DeviceFleet> {
    const { pin, bearer } = parseJoinToken(options.joinToken);
    let ca = options.ca;
    if (pin && new URL(options.server).protocol === 'https:') {
      ca ??= await fetchCaUnverified(options.server);
      const actual = caPinOf(ca);
      if (actual !== pin) throw new Error(`CA pin mismatch: the server's CA is ${actual}, the token pins ${pin}`);
    }
    return new DeviceFleet({ ...options, ...(ca ? { ca } : {}) }, bearer);
  }

  /** The heartbeat interval the server announced last, ms. */
  get intervalMs(): number {
    return this.lastInterval;
  }

  /** Connections open now (heartbeat pool). */
  get connections(): number {
    if (this.mode === 'request') return this.pool.connections;
    let n = 0;
    for (const d of this.devices) if (d.stream?.open) n++;
    return n;
  }

  /**
   * Opens a fleet of `count` devices that do not join: made-up ids and tokens, for measuring a
   * floor (a bare HTTPS server answering heartbeats) with the same client and the same requests.
   */
  static synthetic(options: Omit<FleetOptions, 'joinToken'> & { count: number }): DeviceFleet {
    const fleet = new DeviceFleet({ ...options, joinToken: '' }, '');
    const prefix = options.namePrefix ?? 'floor';
    for (let n = 0; n < options.count; n++) {
      const hex = n.toString(16).padStart(12, '0');
      fleet.devices.push({ n, id: `dev-00000000-0000-4000-8000-${hex}`, name: `${prefix}-${n}`, token: `nxt_tk${hex.padStart(16, '0')}.${'x'.repeat(43)}`, alive: true, intervalMs: options.heartbeatMs ?? 1000 });
    }
    return fleet;
  }

  /** Joins `count` more devices, `joinConcurrency` at a time; no new join starts after `deadline` (Date.now() ms). */
  async join(count: number, deadline = Infinity): Promise<JoinResult> {
    const t0 = performance.now();
    const prefix = this.options.namePrefix ?? 'sim';
    const first = this.devices.length;
    let next = first;
    const end = first + count;
    let joined = 0;
    let failed = 0;
    const errors: Record<string, number> = {};
    const rate = this.options.joinRate ?? Infinity;
    const worker = async () => {
      while (next < end && Date.now() < deadline) {
        // Paced: join k starts no earlier than k / rate seconds after the first.
        const due = t0 + ((next - first) * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) {
          await new Promise((r) => setTimeout(r, wait));
          if (next >= end || Date.now() >= deadline) break;
        }
        const n = next++;
        const name = `${prefix}-${String(n).padStart(5, '0')}`;
        try {
          const r = await this.pool.json<{ device: { id: string }; token: string }>('POST', '/v1/join', this.bearer, {
            name,
            capabilities: {
              os: { platform: 'linux', kernel: '6.1.0-sim', hostname: name },
              cpu: { arch: 'x64', logicalCores: 8, model: 'Simulated CPU' },
              memory: { totalBytes: 8_589_934_592 },
              gpus: [],
            },
            labels: { sim: 'true' },
            agentVersion: 'sim',
          });
          const d: SimDevice = { n, id: r.device.id, name, token: r.token, alive: true, intervalMs: this.options.heartbeatMs ?? 1000 };
          if (this.options.register) {
            await this.pool.json('POST', '/v1/devices', d.token, {
              id: d.id, name, agentVersion: 'sim',
              capabilities: { os: { platform: 'linux', hostname: name }, cpu: { arch: 'x64', logicalCores: 8 }, memory: { totalBytes: 8_589_934_592 }, gpus: [] },
            });
          }
          this.devices.push(d);
          joined++;
          // Like a real agent, a device heartbeats as soon as it has joined (when the fleet runs).
          if (this.running) this.schedule(d, 0);
        } catch (err) {
          failed++;
          const code = errorCode(err);
          errors[code] = (errors[code] ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.options.joinConcurrency ?? 64) }, worker));
    this.devices.sort((a, b) => a.n - b.n);
    const seconds = (performance.now() - t0) / 1000;
    return { joined, failed, seconds, perSecond: joined / seconds, errors };
  }

  /**
   * Starts every alive device heartbeating, first beats spread over one interval (or over
   * `spreadMs`, to open many streams at the pace devices would join); devices that join later start
   * at once (call it before `join()` to have devices beat while others join).
   */
  start(spreadMs?: number): void {
    this.running = true;
    for (const d of this.devices) if (d.alive && !d.timer) this.schedule(d, Math.random() * Math.max(spreadMs ?? 0, d.intervalMs));
    this.resetWindow();
  }

  private schedule(d: SimDevice, inMs: number): void {
    if (this.mode === 'stream') {
      d.stream ??= new DeviceStream(this.streamTarget(), upgradeHead(this.pool.target.host, d.id, d.token));
    } else {
      d.request ??= this.pool.request(this.pool.head('POST', `/v1/devices/${d.id}/heartbeat`, [`authorization: Bearer ${d.token}`], HEARTBEAT_BODY.length), HEARTBEAT_BODY);
    }
    d.timer = setTimeout(() => this.beat(d), inMs);
  }

  private get mode(): 'stream' | 'request' {
    return this.options.mode ?? 'stream';
  }

  private target: StreamTarget | undefined;

  private streamTarget(): StreamTarget {
    this.target ??= { url: new URL(this.options.server), ...(this.pool.target.protocol === 'https:' ? { secureContext: this.pool.secureContext() } : {}), timeoutMs: this.options.streamTimeoutMs ?? STREAM_TIMEOUT_MS };
    return this.target;
  }

  private send(d: SimDevice, done: HttpCallback): void {
    if (d.stream) {
      // As the agent: every ACK_EVERY-th beat asks for an answer; its latency is what is measured.
      const ack = (d.beats = (d.beats ?? 0) + 1) % ACK_EVERY === 1;
      d.stream.send(ack ? HEARTBEAT_LINE_ACK : HEARTBEAT_LINE, done, ack);
    }
    else this.pool.sendRaw(d.request!, done);
  }

  private beat(d: SimDevice): void {
    d.timer = undefined;
    if (!this.running || !d.alive) return;
    const started = performance.now();
    this.send(d, (err, res) => {
      if (err) this.count(errorCode(err));
      else if (res!.status === 204) {
        // Written on a stream without asking for an answer (as agents send most beats).
        this.ok++;
        this.written++;
        if (d.stream!.intervalMs > 0) d.intervalMs = this.lastInterval = d.stream!.intervalMs;
      } else if (res!.status >= 200 && res!.status < 300) {
        this.ok++;
        this.lat.push(res!.totalMs);
        this.wire.push(res!.wireMs);
        const i = res!.body.indexOf(INTERVAL);
        if (i >= 0) {
          const ms = parseInt(res!.body.toString('latin1', i + INTERVAL.length, i + INTERVAL.length + 12), 10);
          if (ms > 0) d.intervalMs = this.lastInterval = ms;
        }
      } else {
        this.count(`HTTP_${res!.status}`);
      }
      if (!this.running || !d.alive) return;
      // Like the agent: a little early, never late (85–100 % of the interval, minus the time spent).
      const next = d.intervalMs * (0.85 + 0.15 * Math.random()) - (performance.now() - started);
      d.timer = setTimeout(() => this.beat(d), Math.max(0, next));
    });
  }

  private count(code: string): void {
    this.failed++;
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  /** Starts a new measurement window (drops what was counted so far). */
  resetWindow(): void {
    this.windowStart = performance.now();
    this.ok = 0;
    this.written = 0;
    this.failed = 0;
    this.errors = {};
    this.lat.take();
    this.wire.take();
  }

  /** The figures since the last `resetWindow()` / `window()`, and a new window. */
  window(): WindowStats {
    const seconds = (performance.now() - this.windowStart) / 1000;
    const alive = this.devices.filter((d) => d.alive).length;
    const out: WindowStats = {
      seconds,
      ok: this.ok,
      unanswered: this.written,
      failed: this.failed,
      errors: this.errors,
      perSecond: this.ok / seconds,
      expectedPerSecond: (alive * 1000) / (0.925 * this.lastInterval),
      alive,
      latency: percentiles(this.lat.take()),
      wire: percentiles(this.wire.take()),
      intervalMs: this.lastInterval,
    };
    this.resetWindow();
    return out;
  }

  /** Stops `count` devices heartbeating (spread over the fleet), as if SIGKILLed. */
  kill(count: number): SimDevice[] {
    const alive = this.devices.filter((d) => d.alive);
    const step = alive.length / Math.max(1, count);
    const victims: SimDevice[] = [];
    const t = performance.now();
    for (let i = 0; i < count && i < alive.length; i++) {
      const d = alive[Math.floor(i * step)]!;
      d.alive = false;
      d.killedAt = t;
      clearTimeout(d.timer);
      d.timer = undefined;
      // As after SIGKILL: the kernel closes the device's connection.
      d.stream?.close();
      victims.push(d);
    }
    return victims;
  }

  /**
   * Polls `GET /v1/devices/:id` (as `reader`, e.g. an admin token) for each killed device every
   * `pollMs` until the server shows it `down` or `timeoutMs` passes. One small read per device
   * still up: at 10,000 devices the full list is megabytes per poll and would skew what it measures.
   */
  async watchDown(victims: SimDevice[], reader: string, pollMs = 100, timeoutMs = 20_000): Promise<Detection[]> {
    const out = new Map<string, Detection>(victims.map((d) => [d.id, { id: d.id, name: d.name }]));
    const pending = new Set(victims);
    const deadline = performance.now() + timeoutMs;
    while (pending.size > 0 && performance.now() < deadline) {
      const round = performance.now();
      await Promise.all([...pending].map(async (d) => {
        try {
          const dev = await this.watchPool.json<{ state: string; health?: string }>('GET', `/v1/devices/${d.id}`, reader);
          const s = (performance.now() - d.killedAt!) / 1000;
          const health = dev.health ?? dev.state;
          const det = out.get(d.id)!;
          if (health === 'unreachable' && det.unreachableS === undefined) det.unreachableS = s;
          if (health === 'down') {
            det.downS = s;
            det.unreachableS ??= s;
            pending.delete(d);
          }
        } catch {
          /* try again next round */
        }
      }));
      const wait = pollMs - (performance.now() - round);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    return [...out.values()];
  }

  /** `GET /v1/devices` once: how long the full list takes at this size, and how big it is. */
  async timeList(reader: string): Promise<{ ms: number; items: number; bytes: number }> {
    const head = this.readPool.head('GET', '/v1/devices', [`authorization: Bearer ${reader}`], undefined);
    const res = await this.readPool.send(head);
    if (res.status !== 200) throw new HttpError(`GET /v1/devices: HTTP ${res.status}`, `HTTP_${res.status}`);
    const items = (JSON.parse(res.body.toString('utf8')) as { items: unknown[] }).items.length;
    return { ms: res.wireMs, items, bytes: res.body.length };
  }

  /** A read through the fleet's small read pool (admin requests of a benchmark). */
  read<T>(method: string, path: string, bearer: string, body?: unknown): Promise<T> {
    return this.readPool.json<T>(method, path, bearer, body);
  }

  /** Stops every heartbeat and closes the connections. */
  stop(): void {
    this.running = false;
    clearInterval(this.sweeper);
    for (const d of this.devices) {
      clearTimeout(d.timer);
      d.timer = undefined;
      d.stream?.close();
    }
    this.pool.close();
    this.readPool.close();
    this.watchPool.close();
  }
}
