/**
 * With several servers (etcd), an agent's heartbeats reach whichever server it talks to, but the
 * health controller runs on the leader. Each server therefore publishes the heartbeats it received
 * as one batch per `flushMs` under `/nexus/heartbeats/<serverId>/<chunk>` and watches the others'
 * batches: O(servers) writes per second, whatever the number of devices. Ages, not timestamps,
 * travel, so servers' clocks need not agree. One SQLite server has no peers and runs no relay.
 */
import { keys } from '../store/keys.js';
import type { Clock, StateStore, Watch } from '../store/types.js';
import type { Utilization } from '../resources/device.js';
import type { HeartbeatTable } from './heartbeats.js';

export interface HeartbeatRelayOptions {
  /** How often received heartbeats are published, in ms. @default 500 */
  flushMs?: number;
  /** Devices per published key (etcd takes values up to 1.5 MiB). @default 2000 */
  chunkSize?: number;
  onError?: (err: unknown) => void;
}

/** One published batch: [deviceId, age in ms at publication, utilization?]. */
interface Batch {
  entries: [string, number, Utilization?][];
}

export class HeartbeatRelay {
  private timer: NodeJS.Timeout | undefined;
  private watch: Watch | undefined;
  private flushing = false;
  private chunksWritten = 0;
  private readonly flushMs: number;
  private readonly chunkSize: number;

  constructor(
    private readonly store: StateStore,
    private readonly table: HeartbeatTable,
    private readonly serverId: string,
    private readonly clock: Clock,
    private readonly options: HeartbeatRelayOptions = {},
  ) {
    this.flushMs = options.flushMs ?? 500;
    this.chunkSize = options.chunkSize ?? 2000;
  }

  start(): void {
    const own = `${keys.heartbeatRelays()}${this.serverId}/`;
    const w = this.store.watch(keys.heartbeatRelays());
    this.watch = w;
    void (async () => {
      try {
        for await (const ev of w) {
          if (ev.type !== 'put' || ev.key.startsWith(own)) continue;
          this.receive(ev.value);
        }
      } catch (err) {
        this.options.onError?.(err);
      }
    })();
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  private receive(value: string): void {
    const now = this.clock();
    let batch: Batch;
    try {
      batch = JSON.parse(value) as Batch;
    } catch {
      return;
    }
    for (const [id, age, util] of batch.entries ?? []) this.table.merge(id, now - age, util);
  }

  /** Publishes what arrived here since the last flush. */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      const fresh = this.table.takeDirty();
      if (fresh.length === 0) return;
      const now = this.clock();
      const entries = fresh.map(([id, s]): [string, number, Utilization?] => (s.utilization ? [id, now - s.seenAt, s.utilization] : [id, now - s.seenAt]));
      for (let i = 0; i * this.chunkSize < entries.length; i++) {
        const batch: Batch = { entries: entries.slice(i * this.chunkSize, (i + 1) * this.chunkSize) };
        await this.store.put(keys.heartbeatRelay(this.serverId, i), JSON.stringify(batch));
        this.chunksWritten = Math.max(this.chunksWritten, i + 1);
      }
    } catch (err) {
      this.options.onError?.(err);
    } finally {
      this.flushing = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.watch?.close();
    if (this.chunksWritten > 0) await this.store.deletePrefix(`${keys.heartbeatRelays()}${this.serverId}/`).catch(() => {});
  }
}
