/**
 * Heartbeat streams for the device simulator, as `nexus agent` sends them (docs/adr/011): one
 * connection per device (TLS or plain TCP), upgraded with `GET /v1/devices/:id/heartbeats` and
 * `Upgrade: nexus-heartbeats/1`, then a heartbeat line per beat and one answer line back per line.
 * Written on raw sockets like http.ts, because the simulator shares the cores with the server it
 * measures.
 *
 * Only `node:` modules: no NEXUS code.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import { HttpError, type HttpCallback } from './http.js';

const CRLF2 = Buffer.from('\r\n\r\n');
const INTERVAL = Buffer.from('"intervalMs":');
const ACKED = Buffer.from('"ack":true');
const EMPTY = Buffer.alloc(0);
const ERROR_CODE = /"code":"([A-Z_]+)"/;
const now = () => performance.now();

export interface StreamTarget {
  url: URL;
  secureContext?: tls.SecureContext;
  timeoutMs: number;
}

/** The upgrade request of a device's stream: sent once per connection, the heartbeats follow. */
export function upgradeHead(host: string, deviceId: string, bearer: string): Buffer {
  return Buffer.from(`GET /v1/devices/${deviceId}/heartbeats HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${bearer}\r\n` +
    'connection: Upgrade\r\nupgrade: nexus-heartbeats/1\r\n\r\n', 'latin1');
}

/**
 * One device's stream. `send(line, done)` writes one heartbeat (a JSON line) and calls
 * `done` with its answer; the connection opens on the first send and again after it broke.
 */
export class DeviceStream {
  private socket: net.Socket | undefined;
  private ready = false;
  private headDone = false;
  private status = 0;
  /** Sends waiting for their answer line, oldest first (one at a time, like the agent). */
  private readonly waiting: { sentAt: number; queuedAt: number; done: HttpCallback }[] = [];
  /** Frames to write once the connection is up. */
  private backlog: Buffer[] = [];
  private buf: Buffer | undefined;
  private line: Buffer[] = [];
  private openedAt = 0;
  /** Broken streams in a row, and when the next connection may open (like the agent's backoff). */
  private failures = 0;
  private retryAt = 0;

  constructor(private readonly target: StreamTarget, private readonly head: Buffer) {}

  get open(): boolean {
    return !!this.socket;
  }

  /** Milliseconds the oldest unanswered heartbeat has waited (0 if none). */
  waitedMs(t = now()): number {
    return this.waiting.length ? t - this.waiting[0]!.queuedAt : this.socket && !this.ready ? t - this.openedAt : 0;
  }

  /** The interval the server named last on this stream (0: none yet). */
  intervalMs = 0;

  /** Writes a heartbeat; with `answer`, `done` gets its answer, else status 204 once it is written. */
  send(frame: Buffer, done: HttpCallback, answer = true): void {
    const t = now();
    if (!this.socket && t < this.retryAt) return done(new HttpError('waiting to reconnect', 'EBACKOFF'));
    if (!this.socket) this.connect();
    if (!answer) {
      if (this.ready) this.socket!.write(frame);
      else this.backlog.push(frame);
      return done(undefined, { status: 204, body: EMPTY, totalMs: 0, wireMs: 0 });
    }
    this.waiting.push({ sentAt: t, queuedAt: t, done });
    if (this.ready) this.socket!.write(frame);
    else this.backlog.push(frame);
  }

  private connect(): void {
    const u = this.target.url;
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    this.ready = false;
    this.headDone = false;
    this.buf = undefined;
    this.line = [];
    this.openedAt = now();
    const onReady = () => {
      this.ready = true;
      const t = now();
      for (const w of this.waiting) w.sentAt = t;
      this.socket!.write(Buffer.concat([this.head, ...this.backlog]));
      this.backlog = [];
    };
    const s = u.protocol === 'https:'
      ? tls.connect({ host, port, secureContext: this.target.secureContext, noDelay: true, ...(net.isIP(host) ? {} : { servername: host }) } as tls.ConnectionOptions, onReady)
      : net.connect({ host, port, noDelay: true }, onReady);
    this.socket = s;
    s.setNoDelay(true);
    s.on('data', (c: Buffer) => this.onData(c));
    s.on('error', (e: NodeJS.ErrnoException) => this.broken(new HttpError(e.message, e.code ?? 'ECONN')));
    s.on('close', () => this.broken(new HttpError('connection closed', 'ECONNRESET')));
  }

  /** Ends the stream (the device was killed or the fleet stops). */
  close(err = new HttpError('stream closed', 'ECLOSED')): void {
    this.broken(err);
    this.failures = 0;
    this.retryAt = 0;
  }

  /** Fails a stream whose oldest answer is overdue (the fleet's sweep calls it). */
  expire(t: number): void {
    if (this.waitedMs(t) > this.target.timeoutMs) this.broken(new HttpError(`no answer within ${this.target.timeoutMs} ms`, 'ETIMEDOUT'));
  }

  private broken(err: HttpError): void {
    const s = this.socket;
    if (!s) return;
    this.socket = undefined;
    this.ready = false;
    this.backlog = [];
    s.destroy();
    // Reconnect after 1, 2, 4 … 16 s (jittered), so a server that fell behind is not then buried in handshakes.
    this.failures++;
    this.retryAt = now() + Math.min(16_000, 1000 * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2);
    for (const w of this.waiting.splice(0)) w.done(err);
  }

  private onData(chunk: Buffer): void {
    if (this.headDone) return this.lines(chunk);
    const b = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = undefined;
    const i = b.indexOf(CRLF2);
    if (i < 0) {
      this.buf = b;
      return;
    }
    this.status = Number(b.toString('latin1', 9, 12));
    this.headDone = true;
    const rest = b.subarray(i + 4);
    if (this.status !== 101) {
      // A refusal: the body is one JSON error; what arrived with the head is enough to name it.
      const code = ERROR_CODE.exec(rest.toString('utf8'))?.[1] ?? `HTTP_${this.status}`;
      return this.broken(new HttpError(`stream refused: HTTP ${this.status}`, code));
    }
    if (rest.length) this.lines(rest);
  }

  private lines(data: Buffer): void {
    let start = 0;
    let nl = data.indexOf(10);
    while (nl >= 0) {
      const part = data.subarray(start, nl);
      const whole = this.line.length ? Buffer.concat([...this.line, part]) : part;
      this.line = [];
      this.answer(whole);
      start = nl + 1;
      nl = data.indexOf(10, start);
    }
    if (start < data.length) this.line.push(Buffer.from(data.subarray(start)));
  }

  private answer(body: Buffer): void {
    const i = body.indexOf(INTERVAL);
    if (i >= 0) this.intervalMs = parseInt(body.toString('latin1', i + INTERVAL.length, i + INTERVAL.length + 12), 10) || this.intervalMs;
    if (i >= 0 && body.indexOf(ACKED) < 0) return; // a notice: the interval changed
    const w = this.waiting.shift();
    if (!w) return; // the server's last word on a stream it closes (no heartbeat waiting)
    const t = now();
    this.failures = 0;
    if (i >= 0) return w.done(undefined, { status: 200, body, totalMs: t - w.queuedAt, wireMs: t - w.sentAt });
    const code = ERROR_CODE.exec(body.toString('utf8'))?.[1] ?? 'BAD_ANSWER';
    w.done(new HttpError(`answered ${body.toString('utf8').slice(0, 200)}`, code));
  }
}
