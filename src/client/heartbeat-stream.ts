/**
 * The agent's end of a heartbeat stream (docs/adr/011-heartbeat-streams.md): one long
 * `POST /v1/devices/:id/heartbeats` on a connection of its own, a heartbeat line per beat, one
 * answer line per heartbeat. `send()` opens the stream when none is open; a stream that breaks
 * is opened again by the next `send()`.
 */
import http from 'node:http';
import https from 'node:https';
import type { Heartbeat, HeartbeatReply } from '../resources/device.js';
import { ApiError, type TransportOptions } from './transport.js';

const NDJSON = 'application/x-ndjson';

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

/** One open stream: the request we write to and the answers we read. */
class OpenStream {
  closed = false;
  private buf = '';
  private readonly waiting: Waiting[] = [];

  constructor(
    private readonly req: http.ClientRequest,
    res: http.IncomingMessage,
    private readonly addr: string,
    private readonly onClose: () => void,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.onData(chunk));
    res.on('end', () => this.close(this.broken('the server ended the heartbeat stream')));
    res.on('error', (err) => this.close(this.broken(err.message)));
    req.on('error', (err) => this.close(this.broken(err.message)));
  }

  send(hb: Heartbeat, timeoutMs: number): Promise<HeartbeatReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.close(this.broken(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({ resolve, reject, timer });
      this.req.write(JSON.stringify(hb) + '\n');
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      const body = parse(line) as (HeartbeatReply & ErrorBody) | undefined;
      const w = this.waiting.shift();
      if (body?.error) {
        // A refusal of this heartbeat, or the server's last word before it closes the stream
        // (revoked, idle, shutting down): either way the caller hears the server's code.
        const err = apiError(body, 0, line);
        if (w) {
          clearTimeout(w.timer);
          w.reject(err);
        }
        continue;
      }
      if (!w) continue;
      clearTimeout(w.timer);
      if (typeof body?.intervalMs === 'number') w.resolve({ intervalMs: body.intervalMs });
      else w.reject(new ApiError('NEXUS_E_INTERNAL', `unexpected heartbeat answer: ${line.slice(0, 200)}`, 0));
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
    this.req.destroy();
    this.onClose();
  }
}

export class HeartbeatStreamClient {
  private stream: OpenStream | undefined;
  private opening: Promise<OpenStream> | undefined;

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
    const s = this.isOpen ? this.stream! : await (this.opening ??= this.open(timeoutMs).finally(() => (this.opening = undefined)));
    return s.send(hb, timeoutMs);
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
        method: 'POST',
        // A connection of its own: the stream holds it for as long as the agent runs.
        agent: false,
        headers: {
          accept: NDJSON,
          'content-type': NDJSON,
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        ...(this.options.ca ? { ca: this.options.ca } : {}),
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(new ApiError('NEXUS_E_CONNECT', `Cannot open a heartbeat stream to ${addr}: ${err.message}`, 503));
      };
      req.once('error', fail);
      req.once('response', (res) => {
        clearTimeout(timer);
        req.off('error', fail);
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            req.destroy();
            const text = Buffer.concat(chunks).toString('utf8');
            reject(apiError(parse(text) as ErrorBody | undefined, status, `HTTP ${status}: ${text.slice(0, 200)}`));
          });
          res.on('error', (err) => reject(new ApiError('NEXUS_E_CONNECT', err.message, 503)));
          return;
        }
        res.socket.setNoDelay(true);
        const s = new OpenStream(req, res, addr, () => {
          if (this.stream === s) this.stream = undefined;
        });
        this.stream = s;
        resolve(s);
      });
      // The headers go now; the body is the heartbeats to come.
      req.flushHeaders();
    });
  }
}
