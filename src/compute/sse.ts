/**
 * Server-sent events, both ends: `SseWriter` streams from a fastify route, `readSse` reads a stream
 * with the client's address, token and CA (node:http, like the rest of the SDK).
 */
import http from 'node:http';
import https from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type TransportOptions } from '../client/transport.js';

/** Keep-alive comment interval; clients treat 3× this without a byte as a dead stream. */
export const SSE_KEEPALIVE_MS = 15_000;

/** Open streams, so a closing server ends them instead of waiting for clients to hang up. */
const OPEN = new Set<SseWriter>();
const INSTALLED = new WeakSet<FastifyInstance>();

/** Call once per app (route modules do): on close, every stream of that app is ended. */
export function installSseShutdown(app: FastifyInstance): void {
  if (INSTALLED.has(app)) return;
  INSTALLED.add(app);
  app.addHook('preClose', (done) => {
    for (const w of [...OPEN]) if (w.httpServer === app.server) w.end();
    done();
  });
}

export class SseWriter {
  private closed = false;
  readonly httpServer: unknown;
  private readonly timer: NodeJS.Timeout;
  private readonly abort = new AbortController();

  constructor(req: FastifyRequest, private readonly reply: FastifyReply, keepaliveMs = SSE_KEEPALIVE_MS) {
    this.httpServer = req.server.server;
    OPEN.add(this);
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    reply.raw.write(': nexus\n\n');
    this.timer = setInterval(() => this.comment(), keepaliveMs);
    this.timer.unref();
    const onClose = () => this.close();
    req.raw.once('close', onClose);
    reply.raw.once('close', onClose);
    reply.raw.once('error', onClose);
  }

  /** Aborts when the client goes away or `end()` is called. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(event: string, data: unknown): void {
    if (this.closed) return;
    this.reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  comment(text = 'keep-alive'): void {
    if (!this.closed) this.reply.raw.write(`: ${text}\n\n`);
  }

  end(): void {
    if (this.closed) return;
    this.reply.raw.end();
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    OPEN.delete(this);
    clearInterval(this.timer);
    this.abort.abort();
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }
}

export interface SseMessage {
  event: string;
  data: unknown;
}

export interface ReadSseOptions {
  signal?: AbortSignal;
  /** A stream silent for this long is dropped (the server sends keep-alives). @default 3 × SSE_KEEPALIVE_MS */
  idleMs?: number;
}

/**
 * Opens `path` as an event stream and yields its messages until the server ends it. Non-2xx
 * answers throw ApiError with the server's code; a dropped connection throws NEXUS_E_CONNECT.
 */
export async function* readSse(opts: TransportOptions, path: string, options: ReadSseOptions = {}): AsyncGenerator<SseMessage> {
  const url = new URL(path, opts.addr);
  const lib = url.protocol === 'https:' ? https : http;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = lib.request(url, {
      method: 'GET',
      headers: {
        accept: 'text/event-stream',
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      },
      ...(opts.ca ? { ca: opts.ca } : {}),
      signal: options.signal,
    }, resolve);
    req.on('error', (err) => reject(options.signal?.aborted ? err : new ApiError('NEXUS_E_CONNECT', `Cannot reach the NEXUS server at ${opts.addr}: ${err.message}. Is it running? (set NEXUS_ADDR)`, 503)));
    req.end();
  });
  if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let err: { code?: string; message?: string; field?: string } | undefined;
    try {
      err = (JSON.parse(text) as { error?: typeof err }).error;
    } catch {
      err = undefined;
    }
    throw new ApiError(err?.code ?? 'NEXUS_E_INTERNAL', err?.message ?? `HTTP ${res.statusCode}: ${text.slice(0, 200)}`, res.statusCode ?? 500, err?.field);
  }
  res.setEncoding('utf8');
  const idleMs = options.idleMs ?? 3 * SSE_KEEPALIVE_MS;
  res.socket.setTimeout(idleMs, () => res.destroy(new Error(`no data for ${idleMs} ms`)));
  let buf = '';
  try {
    for await (const chunk of res) {
      buf += (chunk as string).replace(/\r\n/g, '\n');
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line === '') continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length === 0) continue;
        const text = data.join('\n');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* plain text data */
        }
        yield { event, data: parsed };
      }
    }
  } catch (err) {
    if (options.signal?.aborted) return;
    throw new ApiError('NEXUS_E_CONNECT', `The event stream from ${opts.addr} broke: ${(err as Error).message}`, 503);
  } finally {
    res.destroy();
  }
  if (!res.complete && !options.signal?.aborted) throw new ApiError('NEXUS_E_CONNECT', `The event stream from ${opts.addr} ended early`, 503);
}

/** A small unbounded async queue: producers `push`, one consumer iterates. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: ((v: IteratorResult<T>) => void) | undefined;
  private failer: ((e: unknown) => void) | undefined;
  private error: unknown;
  private done = false;

  push(v: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.failer = undefined;
      w({ value: v, done: false });
    } else this.items.push(v);
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.error = err;
    this.done = true;
    if (this.failer) {
      const f = this.failer;
      this.waiter = undefined;
      this.failer = undefined;
      f(err);
    }
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.failer = undefined;
      w({ value: undefined as never, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.done) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = resolve;
          this.failer = reject;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined as never, done: true });
      },
    };
  }
}
