/**
 * Heartbeat streams (docs/adr/011-heartbeat-streams.md): an agent upgrades one connection
 * (`GET /v1/devices/:id/heartbeats`, `Upgrade: nexus-heartbeats/1`) and then writes a heartbeat
 * line every interval. The server answers a heartbeat that asks (`"ack":true`) with
 * `{"intervalMs":N,"ack":true}`, in order; it tells the agent `{"intervalMs":N}` unasked when the
 * interval changes, and answers a bad line with `{"error":{code,message,field}}`. Authentication,
 * routing and HTTP parsing are paid once per connection, not once per beat, and most beats get no
 * answer: a beat costs a TLS record in, a JSON.parse, a schema check and a map update.
 *
 * This file is the transport-free part: framing, validation, the per-line work, re-checking the
 * credential, idle and shutdown. The HTTP glue is src/api/routes/heartbeats.ts.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { NexusError } from '../errors/catalogue.js';
import { Heartbeat } from '../resources/device.js';

const check = TypeCompiler.Compile(Heartbeat);

/** A heartbeat line longer than this ends the stream (a heartbeat is a few hundred bytes). */
export const MAX_LINE_BYTES = 64 * 1024;
/** Answers not read by the agent beyond this many bytes end the stream (it stopped reading). */
const MAX_UNREAD_BYTES = 256 * 1024;
/** The interval an agent assumes until it is told one (the server's default). */
const DEFAULT_INTERVAL_MS = 1000;
/** The credential is verified again when a line arrives this long after the last check. */
export const REVERIFY_MS = 5_000;

/** Where answers go: the response body. */
export interface StreamSink {
  /** Writes one answer; false when the client is not reading fast enough. */
  write(line: string | Buffer): boolean;
  /** Bytes written and not yet taken by the client. */
  readonly unread: number;
  /** Ends the answer stream (and the connection). */
  end(): void;
}

export interface HeartbeatStreamOptions {
  deviceId: string;
  sink: StreamSink;
  /** Records one heartbeat; returns the interval to announce. */
  beat(hb: Heartbeat): number;
  /**
   * Checks the stream's credential again (revoked, expired); throws the refusal. Called at most
   * every REVERIFY_MS, only when a line arrives, so a quiet stream costs nothing.
   */
  reverify(): Promise<void> | void;
  now?: () => number;
}

/** `/utilization/cpuPct` → `utilization.cpuPct`. */
const dotted = (path: string) => path.split('/').filter(Boolean).join('.');

/** The validation error of a heartbeat line, in the API's shapes (src/api/errors.ts). */
export function heartbeatError(value: unknown): NexusError | undefined {
  if (check.Check(value)) return undefined;
  const e = check.Errors(value).First();
  if (!e) return new NexusError('NEXUS_E_VALIDATION', { field: 'heartbeat', detail: 'invalid value' });
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return new NexusError('NEXUS_E_UNKNOWN_FIELD', { field: dotted(e.path) });
  if (e.type === ValueErrorType.ObjectRequiredProperty) return new NexusError('NEXUS_E_VALIDATION', { field: dotted(e.path), detail: 'it is required' });
  return new NexusError('NEXUS_E_VALIDATION', { field: dotted(e.path) || 'heartbeat', detail: e.message.toLowerCase() });
}

const errorLine = (err: NexusError) => JSON.stringify(err.toJSON()) + '\n';

/** One agent's stream. Feed it the request body with `push`; it answers through the sink. */
export class HeartbeatStream {
  readonly deviceId: string;
  /** When the last line arrived (or the stream opened). */
  lastLineAt: number;
  /** Heartbeats accepted on this stream. */
  beats = 0;
  private closed = false;
  private partial: Buffer | undefined;
  private verifiedAt: number;
  private verifying = false;
  /** The answers for the current interval, encoded once: most answers are the same bytes. */
  private acked = Buffer.alloc(0);
  private notice = Buffer.alloc(0);
  private answerFor = -1;
  /** The interval this agent heard last (the protocol's default, 1000 ms, until told otherwise). */
  private told = DEFAULT_INTERVAL_MS;
  private readonly now: () => number;

  constructor(private readonly options: HeartbeatStreamOptions) {
    this.deviceId = options.deviceId;
    this.now = options.now ?? Date.now;
    this.lastLineAt = this.verifiedAt = this.now();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A chunk of the request body: zero or more whole lines, maybe a partial one at either end. */
  push(chunk: Buffer): void {
    if (this.closed) return;
    let start = 0;
    let nl = chunk.indexOf(10);
    if (this.partial) {
      if (nl < 0) {
        this.partial = Buffer.concat([this.partial, chunk]);
        if (this.partial.length > MAX_LINE_BYTES) this.tooLong();
        return;
      }
      const line = Buffer.concat([this.partial, chunk.subarray(0, nl)]);
      this.partial = undefined;
      if (line.length > MAX_LINE_BYTES) return this.tooLong();
      this.line(line);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    while (nl >= 0 && !this.closed) {
      if (nl - start > MAX_LINE_BYTES) return this.tooLong();
      this.line(chunk.subarray(start, nl));
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length && !this.closed) {
      if (chunk.length - start > MAX_LINE_BYTES) return this.tooLong();
      // Copied: the chunk's memory may be reused.
      this.partial = Buffer.from(chunk.subarray(start));
    }
  }

  /** Ends the stream with a last line (an error, or a shutdown notice), then closes it. */
  fail(err: NexusError): void {
    if (this.closed) return;
    this.options.sink.write(errorLine(err));
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.partial = undefined;
    this.options.sink.end();
  }

  private tooLong(): void {
    this.fail(new NexusError('NEXUS_E_BODY_TOO_LARGE', { limit: MAX_LINE_BYTES }));
  }

  private line(bytes: Buffer): void {
    const now = this.now();
    this.lastLineAt = now;
    // Blank lines keep a connection alive through proxies; they are not heartbeats.
    if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 13)) return;
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      this.send(errorLine(new NexusError('NEXUS_E_BAD_JSON', { detail: (err as Error).message })));
      return;
    }
    const bad = heartbeatError(value);
    if (bad) {
      this.send(errorLine(bad));
      return;
    }
    if (now - this.verifiedAt >= REVERIFY_MS && !this.verifying) this.reverify(now);
    const hb = value as Heartbeat;
    const interval = this.options.beat(hb);
    this.beats++;
    // Answers cost a write each (the largest part of a beat): only asked ones, and a notice when
    // the interval this agent was told changes.
    if (interval !== this.answerFor) {
      this.answerFor = interval;
      this.acked = Buffer.from(`{"intervalMs":${interval},"ack":true}\n`);
      this.notice = Buffer.from(`{"intervalMs":${interval}}\n`);
    }
    if (hb.ack) this.send(this.acked);
    else if (interval !== this.told) this.send(this.notice);
    this.told = interval;
  }

  private send(line: string | Buffer): void {
    this.options.sink.write(line);
    if (this.options.sink.unread > MAX_UNREAD_BYTES) this.close();
  }

  private reverify(now: number): void {
    this.verifying = true;
    const done = () => {
      this.verifying = false;
      this.verifiedAt = now;
    };
    const refused = (err: unknown) => {
      this.verifying = false;
      this.fail(err instanceof NexusError ? err : new NexusError('NEXUS_E_INTERNAL', { detail: `the credential could not be checked: ${(err as Error).message}` }));
    };
    try {
      const p = this.options.reverify();
      if (p) p.then(done, refused);
      else done();
    } catch (err) {
      refused(err);
    }
  }
}

/**
 * The open streams of one server: closes the idle ones (an agent that stopped writing without
 * closing), and all of them when the server shuts down (agents reconnect to another server, or
 * to this one once it is back).
 */
export class HeartbeatStreams {
  private readonly open = new Set<HeartbeatStream>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly idleMs: () => number, sweepMs = 5_000, private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.open.size;
  }

  /** After `closeAll()`: the server is shutting down and takes no new stream. */
  get isClosed(): boolean {
    return this.closed;
  }

  add(s: HeartbeatStream): void {
    if (this.closed) return s.fail(new NexusError('NEXUS_E_NOT_READY', { detail: 'the server is shutting down' }));
    this.open.add(s);
  }

  delete(s: HeartbeatStream): void {
    this.open.delete(s);
  }

  /** Ends every stream of a device (its credential was revoked here). */
  closeDevice(deviceId: string, err: NexusError): void {
    for (const s of this.open) if (s.deviceId === deviceId) s.fail(err);
  }

  /** Ends every stream, telling the agents why. */
  closeAll(err: NexusError): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const s of [...this.open]) s.fail(err);
    this.open.clear();
  }

  private sweep(): void {
    const cutoff = this.now() - this.idleMs();
    for (const s of this.open) {
      if (s.isClosed) this.open.delete(s);
      else if (s.lastLineAt < cutoff) {
        s.fail(new NexusError('NEXUS_E_STREAM_IDLE', { seconds: Math.round(this.idleMs() / 1000) }));
        this.open.delete(s);
      }
    }
  }
}
