/**
 * A NEXUS Watch over etcd's raw Watch RPC, one gRPC stream per watch.
 *
 * Why not etcd3's `client.watch()` builder: its WatchManager resumes after a reconnect from the
 * *header* revision of the last response (`header.revision + 1`), and etcd sends the current store
 * revision in that header, both in the `created` response and in catch-up batches that stop short
 * of it (etcd replays history in batches of at most 1000 revisions). A reconnect during a replay
 * would skip events. So this class tracks the revision itself, as etcd's Go client does: resume at
 * (last delivered event's revision + 1), drop anything below it, and never split a revision
 * (fragments are reassembled before anything is delivered).
 */
import type { IDuplexStream, IEvent, IWatchCreateRequest, IWatchRequest, IWatchResponse, WatchClient } from 'etcd3';
import { NexusError } from '../../errors/catalogue.js';
import { EventQueue } from '../event-queue.js';
import type { Watch, WatchEvent } from '../types.js';
import type { KeySpace } from './convert.js';

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

export interface EtcdWatchOptions {
  readonly client: WatchClient;
  readonly keys: KeySpace;
  readonly range: { key: Buffer; range_end: Buffer };
  /** First revision to deliver; undefined = from the moment etcd registers the watch. */
  readonly fromRevision: number | undefined;
  /** Give up (fail with NEXUS_E_STORE_UNAVAILABLE) after etcd has been unreachable this long. */
  readonly giveUpAfterMs: number;
  /** Called once when the watch ends, however it ends. */
  readonly onEnd: (w: EtcdWatch) => void;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;

/** Ends a stream without etcd3 marking the host failed: `end()` first makes it non-writable. */
function teardown(stream: WatchStream): void {
  try {
    stream.end();
    stream.cancel();
  } catch {
    // already gone
  }
}

export class EtcdWatch implements Watch {
  private readonly queue: EventQueue<WatchEvent>;
  private stream: WatchStream | undefined;
  /** Next revision to deliver; everything below it has been delivered (or predates the watch). */
  private nextRev: number | undefined;
  private fragments: IEvent[] = [];
  private backoffMs = 0;
  private downSince: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(private readonly opts: EtcdWatchOptions) {
    this.nextRev = opts.fromRevision;
    this.queue = new EventQueue<WatchEvent>(() => this.close());
    void this.connect();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return this.queue[Symbol.asyncIterator]();
  }

  close(): void {
    this.end();
    this.queue.close();
  }

  private fail(err: NexusError): void {
    this.end();
    this.queue.fail(err);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.retryTimer);
    if (this.stream) teardown(this.stream);
    this.stream = undefined;
    this.opts.onEnd(this);
  }

  private async connect(): Promise<void> {
    let stream: WatchStream;
    try {
      stream = await this.opts.client.watch();
    } catch (err) {
      this.retry(err);
      return;
    }
    if (this.ended) {
      teardown(stream);
      return;
    }
    this.stream = stream;
    this.fragments = [];
    stream.on('data', (res) => this.onResponse(stream, res));
    stream.on('error', (err) => this.onDown(stream, err));
    stream.on('end', () => this.onDown(stream, new Error('the watch stream ended')));
    const req: IWatchCreateRequest = { ...this.opts.range, fragment: true };
    if (this.nextRev !== undefined) req.start_revision = this.nextRev;
    stream.write({ create_request: req });
  }

  private onDown(stream: WatchStream, err: unknown): void {
    if (stream !== this.stream || this.ended) return;
    this.stream = undefined;
    teardown(stream);
    this.retry(err);
  }

  private retry(err: unknown): void {
    if (this.ended) return;
    const now = Date.now();
    this.downSince ??= now;
    if (now - this.downSince > this.opts.giveUpAfterMs) {
      const detail = `watch could not reconnect for ${this.opts.giveUpAfterMs} ms: ${err instanceof Error ? err.message : String(err)}`;
      this.fail(new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail }, { cause: err }));
      return;
    }
    this.backoffMs = Math.min(Math.max(this.backoffMs * 2, MIN_BACKOFF_MS), MAX_BACKOFF_MS);
    this.retryTimer = setTimeout(() => void this.connect(), this.backoffMs);
  }

  private onResponse(stream: WatchStream, res: IWatchResponse): void {
    if (stream !== this.stream || this.ended) return;
    const compactRevision = Number(res.compact_revision ?? 0);
    if (compactRevision > 0) {
      const revision = this.nextRev ?? this.opts.fromRevision ?? compactRevision;
      this.fail(new NexusError('NEXUS_E_STORE_COMPACTED', { revision, compactRevision }));
      return;
    }
    if (res.canceled) {
      this.fail(new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail: `etcd cancelled the watch: ${res.cancel_reason || 'no reason given'}` }));
      return;
    }
    if (res.created) {
      this.backoffMs = 0;
      this.downSince = undefined;
      // "From now": pin the start so a reconnect resumes exactly here.
      this.nextRev ??= Number(res.header.revision) + 1;
      return;
    }
    if (res.fragment) {
      this.fragments.push(...res.events);
      return;
    }
    const events = this.fragments.length > 0 ? [...this.fragments, ...res.events] : res.events;
    this.fragments = [];
    for (const ev of events) {
      const revision = Number(ev.kv.mod_revision);
      if (this.nextRev !== undefined && revision < this.nextRev) continue; // replayed after a reconnect
      this.queue.push(this.toEvent(ev, revision));
    }
    const last = events[events.length - 1];
    if (last) this.nextRev = Math.max(this.nextRev ?? 0, Number(last.kv.mod_revision) + 1);
  }

  private toEvent(ev: IEvent, revision: number): WatchEvent {
    const put = String(ev.type).toLowerCase() === 'put';
    return {
      type: put ? 'put' : 'delete',
      key: this.opts.keys.unkey(ev.kv.key),
      value: put && ev.kv.value ? ev.kv.value.toString('utf8') : '',
      revision,
      createRevision: Number(ev.kv.create_revision),
      version: Number(ev.kv.version),
    };
  }
}
