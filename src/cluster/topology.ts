/**
 * Topology: agents report what they measured (src/agent/netprobe.ts); the server keeps only the
 * latest sample per directed pair, one store key each (`/nexus/topology/<from>/<to>`), so a report
 * is one small transaction and the matrix is one range read. See ADR 009.
 */
import { NexusError } from '../errors/catalogue.js';
import { SERVER_NODE, type Link, type Topology, type TopologyReport, type TopologyReportResult } from '../resources/topology.js';
import { keys } from '../store/keys.js';
import type { Clock, KeyValue, StateStore, TxnOp, Compare } from '../store/types.js';
import { authorize, type Principal } from '../tenancy/roles.js';

/** Pages of the store read at once. */
const PAGE = 1000;

export interface MatrixOptions {
  /** Leave out links measured longer ago than this. @default no limit */
  maxAgeMs?: number;
}

export class TopologyService {
  constructor(private readonly store: StateStore, private readonly clock: Clock) {}

  /**
   * Stores an agent's samples. Needs `devices:register` (agents, admins); an agent token bound to
   * a device may report only for that device. A sample older than the stored one for its pair is
   * ignored; a sample without bandwidth keeps the pair's last bandwidth. Times in the future are
   * clamped to the server's clock.
   */
  async report(by: Principal, req: TopologyReport): Promise<TopologyReportResult> {
    authorize(by, 'devices:register');
    if (by.role === 'agent' && by.deviceId !== undefined && by.deviceId !== req.from) {
      throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.role, action: `report topology for device ${req.from} (this token belongs to device ${by.deviceId})` }, { field: 'from' });
    }
    if (req.from === SERVER_NODE) throw new NexusError('NEXUS_E_VALIDATION', { field: 'from', detail: `"${SERVER_NODE}" names the server; report from a device id` });
    if (!(await this.store.get(keys.device(req.from)))) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'device', id: req.from });

    const now = this.clock();
    // The newest sample per target.
    const latest = new Map<string, { rttMs: number; bandwidthMbps?: number; atMs: number }>();
    req.samples.forEach((s, i) => {
      if (s.to === req.from) throw new NexusError('NEXUS_E_VALIDATION', { field: `samples.${i}.to`, detail: 'a device cannot measure itself' });
      const atMs = s.at === undefined ? now : Math.min(Date.parse(s.at), now);
      if (!Number.isFinite(atMs)) throw new NexusError('NEXUS_E_VALIDATION', { field: `samples.${i}.at`, detail: 'not a valid date-time' });
      const prev = latest.get(s.to);
      if (!prev || atMs >= prev.atMs) latest.set(s.to, { rttMs: s.rttMs, ...(s.bandwidthMbps !== undefined ? { bandwidthMbps: s.bandwidthMbps } : {}), atMs });
    });

    for (let attempt = 0; attempt < 20; attempt++) {
      const stored = new Map<string, KeyValue>();
      for (const kv of await this.rangeAll(keys.topologyFrom(req.from))) stored.set(kv.key, kv);
      const compare: Compare[] = [];
      const success: TxnOp[] = [];
      let ignored = req.samples.length - latest.size;
      for (const [to, s] of latest) {
        const key = keys.topologyPair(req.from, to);
        const kv = stored.get(key);
        const prev = kv ? (JSON.parse(kv.value) as Link) : undefined;
        if (prev && Date.parse(prev.at) > s.atMs) {
          ignored++;
          continue;
        }
        const at = new Date(s.atMs).toISOString();
        const link: Link = { rttMs: s.rttMs, at };
        if (s.bandwidthMbps !== undefined) Object.assign(link, { bandwidthMbps: s.bandwidthMbps, bandwidthAt: at });
        else if (prev?.bandwidthMbps !== undefined) Object.assign(link, { bandwidthMbps: prev.bandwidthMbps, ...(prev.bandwidthAt ? { bandwidthAt: prev.bandwidthAt } : {}) });
        compare.push({ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 });
        success.push({ type: 'put', key, value: JSON.stringify(link) });
      }
      if (success.length === 0) return { accepted: 0, ignored };
      const r = await this.store.txn({ compare, success });
      if (r.succeeded) return { accepted: success.length, ignored };
    }
    throw new NexusError('NEXUS_E_CONFLICT', { detail: `too much contention storing topology samples of device ${req.from}; retry` });
  }

  /** Everyone with `devices:read`: the latest link of every measured pair, and every device id. */
  async matrix(by: Principal, opts: MatrixOptions = {}): Promise<Topology> {
    authorize(by, 'devices:read');
    return this.read(opts);
  }

  /** `matrix` for in-server callers (the scheduler) that have already authorized. */
  async read(opts: MatrixOptions = {}): Promise<Topology> {
    const oldest = opts.maxAgeMs === undefined ? -Infinity : this.clock() - opts.maxAgeMs;
    const prefix = keys.topology();
    const matrix: Topology['matrix'] = {};
    const ids = new Set<string>();
    for (const kv of await this.rangeAll(prefix)) {
      const [from, to] = kv.key.slice(prefix.length).split('/');
      if (!from || !to) continue;
      const link = JSON.parse(kv.value) as Link;
      if (Date.parse(link.at) < oldest) continue;
      (matrix[from] ??= {})[to] = link;
      ids.add(from);
      if (to !== SERVER_NODE) ids.add(to);
    }
    const devicePrefix = keys.devices();
    for (const kv of await this.rangeAll(devicePrefix)) ids.add(kv.key.slice(devicePrefix.length));
    return { devices: [...ids].sort(), matrix };
  }

  /** The latest link from → to (`to` may be 'server'), for in-server callers. */
  async link(from: string, to: string): Promise<Link | undefined> {
    const kv = await this.store.get(keys.topologyPair(from, to));
    return kv ? (JSON.parse(kv.value) as Link) : undefined;
  }

  /** Drops every link from or to `deviceId`: call it when a device is removed from the cluster. */
  async forget(deviceId: string): Promise<number> {
    const prefix = keys.topology();
    const ops: TxnOp[] = [{ type: 'deletePrefix', prefix: keys.topologyFrom(deviceId) }];
    for (const kv of await this.rangeAll(prefix)) {
      if (kv.key.endsWith(`/${deviceId}`) && !kv.key.startsWith(keys.topologyFrom(deviceId))) ops.push({ type: 'delete', key: kv.key });
    }
    const before = (await this.rangeAll(keys.topologyFrom(deviceId))).length;
    await this.store.txn({ compare: [], success: ops });
    return before + ops.length - 1;
  }

  private async rangeAll(prefix: string): Promise<KeyValue[]> {
    const out: KeyValue[] = [];
    let after: string | undefined;
    do {
      const page = await this.store.range(prefix, { limit: PAGE, ...(after ? { after } : {}) });
      out.push(...page.items);
      after = page.next;
    } while (after);
    return out;
  }
}
