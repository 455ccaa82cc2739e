/**
 * The agent's end of a heartbeat stream (docs/adr/011-heartbeat-streams.md): a connection of its
 * own, upgraded (`GET /v1/devices/:id/heartbeats`, `Upgrade: nexus-heartbeats/1`), then a
 * heartbeat line per beat; a heartbeat with `ack: true` is answered, others are not (the server
 * says when the interval changes). `send()` opens the stream when none is open; a stream that
 * breaks is opened again by the next `send()`, after a backoff.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Heartbeat, HeartbeatReply } from '../resources/device.js';
import { ApiError, type TransportOptions } from './transport.js';

/** The `Upgrade` token (src/api/routes/heartbeats.ts). */
const PROTOCOL = 'nexus-heartbeats/1';

interface Waiting {
  resolve: (r: HeartbeatReply) => void;
  reject: (e: ApiError) => void;
  timer: NodeJS.Timeout;
}

type ErrorBody = { error?: { code?: string; message?: string; field?: string } };

const apiError = (body: ErrorBody | undefined, status: number, fallback: string) =>
  new ApiError(body?.error?.code ?? 'NEXUS_E_INTERNAL', body?.error?.message ?? fallback, status, body?.error?.field);

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One open stream: the upgraded connection, heartbeats out and answers in. */
class OpenStream {
  closed = false;
  /** The interval the server named last on this stream (its default until told). */
  intervalMs = 1000;
  private buf = '';
  private readonly waiting: Waiting[] = [];

  constructor(
    private readonly socket: Duplex,
    head: Buffer,
    private readonly addr: string,
    private readonly onClose: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk.toString('utf8')));
    socket.on('end', () => this.close(this.broken('the server ended the heartbeat stream')));
    socket.on('close', () => this.close(this.broken('the connection closed')));
    socket.on('error', (err) => this.close(this.broken(err.message)));
    if (head.length) this.onData(head.toString('utf8'));
  }

  /** Writes a heartbeat; one with `ack` waits for its answer, others resolve once written. */
  send(hb: Heartbeat, timeoutMs: number): Promise<HeartbeatReply> {
    if (!hb.ack) {
      return new Promise((resolve, reject) => {
        this.socket.write(JSON.stringify(hb) + '\n', (err) => (err ? reject(this.broken(err.message)) : resolve({ intervalMs: this.intervalMs })));
      });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.close(this.broken(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({ resolve, reject, timer });
      this.socket.write(JSON.stringify(hb) + '\n');
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      const body = parse(line) as (HeartbeatReply & ErrorBody & { ack?: boolean }) | undefined;
      if (typeof body?.intervalMs === 'number') this.intervalMs = body.intervalMs;
      if (body?.error) {
        // A refusal of a heartbeat, or the server's last word before it closes the stream
        // (revoked, idle, shutting down): the oldest waiting heartbeat hears the server's code.
        const w = this.waiting.shift();
        if (w) {
          clearTimeout(w.timer);
          w.reject(apiError(body, 0, line));
        }
        continue;
      }
      if (body?.ack !== true) continue; // a notice: the interval changed
      const w = this.waiting.shift();
      if (!w) continue;
      clearTimeout(w.timer);
      w.resolve({ intervalMs: this.intervalMs });
    }
  }

  private broken(detail: string): ApiError {
    return new ApiError('NEXUS_E_CONNECT', `The heartbeat stream to ${this.addr} broke: ${detail}`, 503);
  }

  close(err = this.broken('closed')): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.socket.destroy();
    this.onClose();
  }
}

/** Reconnect delays after a stream broke: 1, 2, 4 … 30 s, jittered (a restarted server is not buried in handshakes). */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class HeartbeatStreamClient {
  private stream: OpenStream | undefined;
  private opening: Promise<OpenStream> | undefined;
  private failures = 0;
  private retryAt = 0;

  constructor(private readonly options: TransportOptions, private readonly deviceId: string) {}

  /** Whether a stream is open now. */
  get isOpen(): boolean {
    return !!this.stream && !this.stream.closed;
  }

  /**
   * Sends one heartbeat and resolves with the server's answer. Rejects with ApiError: the
   * server's code for a refusal (NEXUS_E_DEVICE_REVOKED, NEXUS_E_ROUTE_NOT_FOUND from a server
   * without streams, …), NEXUS_E_CONNECT when the stream could not be opened or broke.
   */
  async send(hb: Heartbeat, timeoutMs = this.options.timeoutMs ?? 5000): Promise<HeartbeatReply> {
    if (!this.isOpen && !this.opening && Date.now() < this.retryAt) {
      throw new ApiError('NEXUS_E_CONNECT', `The heartbeat stream to ${this.options.addr} broke; opening it again in ${Math.ceil((this.retryAt - Date.now()) / 1000)} s`, 503);
    }
    try {
      const s = this.isOpen ? this.stream! : await (this.opening ??= this.open(timeoutMs).finally(() => (this.opening = undefined)));
      const reply = await s.send(hb, timeoutMs);
      this.failures = 0;
      return reply;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'NEXUS_E_CONNECT') {
        this.failures++;
        this.retryAt = Date.now() + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2);
      }
      throw err;
    }
  }

  close(): void {
    this.stream?.close();
    this.stream = undefined;
  }

  private open(timeoutMs: number): Promise<OpenStream> {
    const url = new URL(`/v1/devices/${encodeURIComponent(this.deviceId)}/heartbeats`, this.options.addr);
    const lib = url.protocol === 'https:' ? https : http;
    const addr = this.options.addr;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, {
        method: 'GET',
        // A connection of its own: the stream holds it for as long as the agent runs.
        agent: false,
        headers: {
          connection: 'Upgrade',
          upgrade: PROTOCOL,
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        ...(this.options.ca ? { ca: this.options.ca } : {}),
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.once('error', (err) => {
        clearTimeout(timer);
        reject(new ApiError('NEXUS_E_CONNECT', `Cannot open a heartbeat stream to ${addr}: ${err.message}`, 503));
      });
      req.once('upgrade', (_res, socket, head) => {
        clearTimeout(timer);
        (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
        const s = new OpenStream(socket, head, addr, () => {
          if (this.stream === s) this.stream = undefined;
        });
        this.stream = s;
        resolve(s);
      });
      // Any other answer is a refusal in the API's error shape (or a server without streams).
      req.once('response', (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          req.destroy();
          const text = Buffer.concat(chunks).toString('utf8');
          reject(apiError(parse(text) as ErrorBody | undefined, status, `HTTP ${status}: ${text.slice(0, 200)}`));
        });
        res.on('error', (err) => reject(new ApiError('NEXUS_E_CONNECT', err.message, 503)));
      });
      req.end();
    });
  }
}
