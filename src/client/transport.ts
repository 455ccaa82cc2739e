/**
 * HTTP(S) transport of the typed client: node:http/https (so a custom CA works without extra
 * dependencies), JSON in and out, API errors surfaced as ApiError with the server's stable code.
 */
import http from 'node:http';
import https from 'node:https';

export interface TransportOptions {
  /** Server address, e.g. http://127.0.0.1:7070 or https://host:7443. */
  addr: string;
  /** Bearer token. */
  token?: string;
  /** PEM of the CA that signed the server's certificate (NEXUS_CA). */
  ca?: string;
  /** Per-request timeout in milliseconds. @default 30000 */
  timeoutMs?: number;
}

/** An error answered by the server (or the failure to reach it), with a stable `code`. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class Transport {
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(readonly options: TransportOptions) {
    this.base = new URL(options.addr);
    this.agent = this.base.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, ...(options.ca ? { ca: options.ca } : {}) })
      : new http.Agent({ keepAlive: true });
  }

  /** Sends a request and resolves with the raw response (any status). */
  raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, {
        method,
        agent: this.agent,
        timeout: this.options.timeoutMs ?? 30_000,
        headers: {
          accept: 'application/json',
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...headers,
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.options.timeoutMs ?? 30_000} ms`)));
      req.on('error', (err) => reject(new ApiError('NEXUS_E_CONNECT', `Cannot reach the NEXUS server at ${this.options.addr}: ${err.message}. Is it running? (set NEXUS_ADDR)`, 503)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** Sends a JSON request; 2xx resolves with the parsed body, anything else throws ApiError. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const text = res.body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.status >= 200 && res.status < 300) return parsed as T;
    const err = (parsed as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
    throw new ApiError(err?.code ?? 'NEXUS_E_INTERNAL', err?.message ?? `HTTP ${res.status}: ${text.slice(0, 200)}`, res.status, err?.field);
  }

  close(): void {
    this.agent.destroy();
  }
}
