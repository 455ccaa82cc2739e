/**
 * Lease renewals over one shared LeaseKeepAlive stream. etcd has no unary "renew" RPC: renewal is
 * a request/response pair on a bidirectional stream. Opening a stream per renewal would cost a
 * round trip more, so one stream is opened lazily and answers are matched to callers by lease id
 * (etcd answers a stream's requests in order, and echoes the id).
 */
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, LeaseClient } from 'etcd3';
import { NexusError } from '../../errors/catalogue.js';
import { toNexusError } from './convert.js';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface Pending {
  resolve(ttl: number): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

export class KeepAliveChannel {
  private stream: Promise<KeepAliveStream> | undefined;
  private readonly pending = new Map<string, Pending[]>();

  constructor(
    private readonly client: LeaseClient,
    private readonly timeoutMs: number,
  ) {}

  /** Renews lease `id` once; resolves with its new TTL in seconds. */
  async renew(id: string): Promise<number> {
    const stream = await this.open();
    return new Promise<number>((resolve, reject) => {
      // No answer in time: the stream may be wedged. Fail everyone on it; the next renewal opens
      // a fresh one.
      const timer = setTimeout(() => {
        this.reset(new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail: `lease keep-alive got no answer in ${this.timeoutMs} ms` }));
      }, this.timeoutMs);
      const entry: Pending = { resolve, reject, timer };
      const queue = this.pending.get(id) ?? [];
      queue.push(entry);
      this.pending.set(id, queue);
      try {
        stream.write({ ID: id });
      } catch (err) {
        this.reset(toNexusError(err));
      }
    });
  }

  close(): void {
    this.reset(new NexusError('NEXUS_E_STORE_CLOSED'));
  }

  private open(): Promise<KeepAliveStream> {
    if (this.stream) return this.stream;
    const opening = this.client.leaseKeepAlive().then((stream) => {
      stream.on('data', (res) => this.answer(res));
      stream.on('error', (err) => this.lost(opening, err));
      stream.on('end', () => this.lost(opening, new Error('the keep-alive stream ended')));
      return stream;
    });
    opening.catch(() => {
      if (this.stream === opening) this.stream = undefined;
    });
    this.stream = opening;
    return opening;
  }

  private answer(res: ILeaseKeepAliveResponse): void {
    const queue = this.pending.get(res.ID);
    const entry = queue?.shift();
    if (!entry) return;
    if (queue!.length === 0) this.pending.delete(res.ID);
    clearTimeout(entry.timer);
    const ttl = Number(res.TTL);
    // etcd answers TTL 0 (not an error) for a lease that expired or never existed.
    if (ttl > 0) entry.resolve(ttl);
    else entry.reject(new NexusError('NEXUS_E_STORE_LEASE_NOT_FOUND', { lease: res.ID }));
  }

  private lost(which: Promise<KeepAliveStream>, err: unknown): void {
    if (this.stream !== which) return;
    this.reset(toNexusError(err));
  }

  /** Drops the stream and fails whoever still waits on it. */
  private reset(err: unknown): void {
    const old = this.stream;
    this.stream = undefined;
    for (const queue of this.pending.values()) {
      for (const entry of queue) {
        clearTimeout(entry.timer);
        entry.reject(err);
      }
    }
    this.pending.clear();
    old?.then(
      (s) => {
        // end() first: etcd3 marks the host failed when a still-writable stream errors.
        s.end();
        s.cancel();
      },
      () => {},
    );
  }
}
