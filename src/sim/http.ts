/**
 * A deliberately small HTTP/1.1 client for the device simulator: a fixed pool of keep-alive
 * connections (TLS or plain TCP), one request in flight per connection (no pipelining, like a
 * real agent), requests queued FIFO while every connection is busy. It exists because Node's
 * `http` client costs several times more CPU per request than the server work it drives, and the
 * simulator shares the machine with the server it measures.
 *
 * It understands what the NEXUS API answers: a status line, headers, a `content-length` body
 * (chunked bodies are decoded too, for safety). Only `node:` modules: no NEXUS code.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';

export interface HttpPoolOptions {
  /** `https://host:port` or `http://host:port`. */
  url: string;
  /** PEM of the CA that signed the server's certificate (https). */
  ca?: string;
  /** Connections to open at most. @default 64 */
  sockets?: number;
  /** A request without a complete answer after this long fails and its connection is closed. @default 10000 */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  body: Buffer;
  /** ms from `request()` to the whole answer (includes waiting for a free connection). */
  totalMs: number;
  /** ms from writing the request on a connection to the whole answer. */
  wireMs: number;
}

export class HttpError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Called once with the answer or the failure. */
export type HttpCallback = (err: Error | undefined, res?: HttpResponse) => void;

interface Pending {
  /** The whole request: head and body. */
  bytes: Buffer;
  queuedAt: number;
  done: HttpCallback;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const now = () => performance.now();

class Conn {
  socket: net.Socket;
  readonly born = now();
  ready = false;
  closed = false;
  current: Pending | undefined;
  sentAt = 0;
  private buf: Buffer | undefined;
  private parts: Buffer[] = [];
  private size = 0;
  private headerEnd = -1;
  private status = 0;
  private length = -1;
  private chunked = false;
  private close = false;

  constructor(private readonly pool: HttpPool) {
    const u = pool.target;
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (u.protocol === 'https:') {
      this.socket = tls.connect({
        host, port, secureContext: pool.secureContext(),
        ...(net.isIP(host) ? {} : { servername: host }),
        noDelay: true,
      } as tls.ConnectionOptions, () => this.onReady());
    } else {
      this.socket = net.connect({ host, port, noDelay: true }, () => this.onReady());
    }
    this.socket.setNoDelay(true);
    this.socket.on('data', (c: Buffer) => this.onData(c));
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => this.fail(new HttpError('connection closed', 'ECONNRESET')));
  }

  private onReady(): void {
    this.ready = true;
    this.pool.idle(this);
  }

  send(p: Pending): void {
    this.current = p;
    this.sentAt = now();
    this.buf = undefined;
    this.headerEnd = -1;
    this.length = -1;
    this.chunked = false;
    this.close = false;
    this.socket.write(p.bytes);
  }

  private onData(chunk: Buffer): void {
    if (!this.current) return; // nothing asked: ignore (a server never talks first over HTTP/1.1)
    if (this.headerEnd < 0) {
      this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
      const i = this.buf.indexOf(CRLF2);
      if (i < 0) return;
      this.headerEnd = i + 4;
      const head = this.buf.subarray(0, i).toString('latin1');
      const lines = head.split('\r\n');
      this.status = Number(lines[0]!.split(' ')[1]);
      for (let k = 1; k < lines.length; k++) {
        const line = lines[k]!;
        const c = line.indexOf(':');
        const name = line.slice(0, c).trim().toLowerCase();
        const value = line.slice(c + 1).trim().toLowerCase();
        if (name === 'content-length') this.length = Number(value);
        else if (name === 'transfer-encoding' && value.includes('chunked')) this.chunked = true;
        else if (name === 'connection' && value === 'close') this.close = true;
      }
      if (this.length < 0 && !this.chunked) this.length = 0;
      const rest = this.buf.subarray(this.headerEnd);
      this.parts = rest.length ? [rest] : [];
      this.size = rest.length;
    } else {
      // Body chunks are kept apart and joined once: a large answer is not copied again per chunk.
      this.parts.push(chunk);
      this.size += chunk.length;
    }
    let body: Buffer | undefined;
    if (this.chunked) {
      body = decodeChunked(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts));
      if (!body) return;
    } else {
      if (this.size < this.length) return;
      const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      body = all.subarray(0, this.length);
    }
    this.parts = [];
    this.size = 0;
    const p = this.current;
    this.current = undefined;
    this.buf = undefined;
    const t = now();
    p.done(undefined, { status: this.status, body, totalMs: t - p.queuedAt, wireMs: t - this.sentAt });
    if (this.close) this.destroy(new HttpError('server closed the connection', 'ECONNRESET'));
    else this.pool.idle(this);
  }

  destroy(err: Error): void {
    this.fail(err);
    this.socket.destroy();
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.current;
    this.current = undefined;
    this.pool.gone(this);
    p?.done(err instanceof HttpError ? err : new HttpError(err.message, (err as NodeJS.ErrnoException).code ?? 'ECONN'));
  }
}

/** A complete chunked body, or undefined while more is to come. */
function decodeChunked(b: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(b.subarray(at, eol).toString('latin1'), 16);
    if (size === 0) return b.indexOf(CRLF2, eol - 2) >= 0 ? Buffer.concat(parts) : undefined;
    if (b.length < eol + 2 + size + 2) return undefined;
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** A pool of keep-alive connections to one server. */
export class HttpPool {
  readonly target: URL;
  readonly ca: string | undefined;
  private readonly max: number;
  private readonly timeoutMs: number;
  private readonly conns = new Set<Conn>();
  private readonly free: Conn[] = [];
  private queue: Pending[] = [];
  private qHead = 0;
  private readonly hostHeader: string;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private retrying = false;

  constructor(options: HttpPoolOptions) {
    this.target = new URL(options.url);
    this.ca = options.ca;
    this.max = Math.max(1, options.sockets ?? 64);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.hostHeader = this.target.host;
    this.sweeper = setInterval(() => this.sweep(), Math.min(500, this.timeoutMs));
    this.sweeper.unref();
  }

  private context: tls.SecureContext | undefined;

  /** One TLS context for every connection (building one per connection parses the CA each time). */
  secureContext(): tls.SecureContext {
    this.context ??= tls.createSecureContext(this.ca ? { ca: this.ca } : {});
    return this.context;
  }

  /** Connections open (or opening) now. */
  get connections(): number {
    return this.conns.size;
  }

  /** Requests waiting for a free connection. */
  get queued(): number {
    return this.queue.length - this.qHead;
  }

  /**
   * The header block of a request, rendered once so a caller that repeats a request (a
   * heartbeat) pays for it once. `headers` are complete lines without the final CRLF.
   */
  head(method: string, path: string, headers: string[], bodyLength: number | undefined): string {
    let h = `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\naccept: application/json\r\n`;
    for (const line of headers) h += line + '\r\n';
    if (bodyLength !== undefined) h += `content-type: application/json\r\ncontent-length: ${bodyLength}\r\n`;
    return h + '\r\n';
  }

  /** A whole request (head from `head()` and body) as one buffer, to send many times. */
  request(head: string, body?: Buffer): Buffer {
    return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
  }

  /** Sends a request built by `request()`; `done` gets the answer (any status) or the failure. */
  sendRaw(bytes: Buffer, done: HttpCallback): void {
    if (this.closed) return done(new HttpError('pool closed', 'ECLOSED'));
    const p: Pending = { bytes, queuedAt: now(), done };
    const c = this.free.pop();
    if (c) return c.send(p);
    this.queue.push(p);
    if (this.conns.size < this.max) this.conns.add(new Conn(this));
  }

  /** Sends a request rendered by `head()` (with its body) and resolves with the answer, any status. */
  send(head: string, body?: Buffer): Promise<HttpResponse> {
    return new Promise((resolve, reject) => this.sendRaw(this.request(head, body), (err, res) => (err ? reject(err) : resolve(res!))));
  }

  /** A one-off JSON request (joins, reads): renders, sends, parses; non-2xx throws HttpError. */
  async json<T>(method: string, path: string, bearer: string | undefined, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const head = this.head(method, path, bearer ? [`authorization: Bearer ${bearer}`] : [], payload?.length);
    const res = await this.send(head, payload);
    const text = res.body.toString('utf8');
    if (res.status < 200 || res.status >= 300) {
      let code = `HTTP_${res.status}`;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? code;
      } catch {
        /* not JSON */
      }
      throw new HttpError(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`, code);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Called by a connection that is ready for its next request. */
  idle(c: Conn): void {
    if (this.qHead < this.queue.length) {
      const p = this.queue[this.qHead]!;
      this.queue[this.qHead++] = undefined as unknown as Pending;
      if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.qHead);
        this.qHead = 0;
      }
      c.send(p);
    } else {
      this.free.push(c);
    }
  }

  /** Called by a connection that closed; queued requests get a new one. */
  gone(c: Conn): void {
    this.conns.delete(c);
    const i = this.free.indexOf(c);
    if (i >= 0) this.free.splice(i, 1);
    if (this.closed || this.queued === 0 || this.conns.size >= this.max) return;
    // A connection that never came up (refused, handshake failed): retry after a pause, not in a loop.
    if (c.ready) this.conns.add(new Conn(this));
    else if (!this.retrying) {
      this.retrying = true;
      setTimeout(() => {
        this.retrying = false;
        if (!this.closed && this.queued > 0 && this.conns.size < this.max) this.conns.add(new Conn(this));
      }, 100).unref();
    }
  }

  private sweep(): void {
    const t = now();
    for (const c of this.conns) {
      if (c.current && t - c.sentAt > this.timeoutMs) c.destroy(new HttpError(`no answer within ${this.timeoutMs} ms`, 'ETIMEDOUT'));
      else if (!c.ready && t - c.born > this.timeoutMs) c.destroy(new HttpError('connect timeout', 'ETIMEDOUT'));
    }
    // Requests that waited too long for any connection fail too (the server is not answering).
    while (this.qHead < this.queue.length && t - this.queue[this.qHead]!.queuedAt > this.timeoutMs * 2) {
      const p = this.queue[this.qHead]!;
      this.queue[this.qHead++] = undefined as unknown as Pending;
      p.done(new HttpError('no free connection in time', 'ETIMEDOUT'));
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const c of [...this.conns]) c.destroy(new HttpError('pool closed', 'ECLOSED'));
    for (let i = this.qHead; i < this.queue.length; i++) this.queue[i]!.done(new HttpError('pool closed', 'ECLOSED'));
    this.queue = [];
    this.qHead = 0;
  }
}
