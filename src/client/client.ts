/**
 * The typed NEXUS client: the one API surface the CLI, the dashboard, tests and ecosystem apps use.
 *
 * @example
 * const nx = new NexusClient({ addr: 'http://127.0.0.1:7070', token: process.env.NEXUS_TOKEN });
 * const { items } = await nx.devices.list();
 */
import type { Device, DeviceJoin, DeviceJoined, DevicePatch, DeviceRegister, Heartbeat, HeartbeatReply } from '../resources/device.js';
import type { Profile, ProfileCreate, ProfileSpec } from '../resources/profile.js';
import type { Tenant, TenantCreate } from '../resources/tenant.js';
import type { Token, TokenCreate } from '../resources/token.js';
import type { Topology, TopologyReport, TopologyReportResult } from '../resources/topology.js';
import { Transport, type TransportOptions } from './transport.js';
import { jobsClient, logsClient, tasksClient, type JobsClient, type LogsClient, type TasksClient } from '../compute/client.js';

export interface List<T> {
  items: T[];
  next?: string;
}

export class NexusClient {
  readonly transport: Transport;

  constructor(options: TransportOptions) {
    this.transport = new Transport(options);
  }

  health(): Promise<{ status: string; version: string }> {
    return this.transport.json('GET', '/healthz');
  }

  ready(): Promise<{ status: string; detail: string }> {
    return this.transport.json('GET', '/readyz');
  }

  readonly tenants = {
    list: () => this.transport.json<List<Tenant>>('GET', '/v1/tenants'),
    get: (name: string) => this.transport.json<Tenant>('GET', `/v1/tenants/${encodeURIComponent(name)}`),
    create: (req: TenantCreate) => this.transport.json<Tenant>('POST', '/v1/tenants', req),
    delete: (name: string) => this.transport.json<void>('DELETE', `/v1/tenants/${encodeURIComponent(name)}`),
  };

  readonly tokens = {
    list: (tenant?: string) => this.transport.json<List<Token>>('GET', `/v1/tokens${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ''}`),
    create: (req: TokenCreate) => this.transport.json<{ token: string; item: Token }>('POST', '/v1/tokens', req),
    revoke: (id: string) => this.transport.json<Token>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`),
  };

  readonly devices = {
    list: () => this.transport.json<List<Device>>('GET', '/v1/devices'),
    get: (id: string) => this.transport.json<Device>('GET', `/v1/devices/${encodeURIComponent(id)}`),
    register: (req: DeviceRegister) => this.transport.json<Device>('POST', '/v1/devices', req),
    /** Operator changes: `{ operatorState: 'draining' | 'maintenance' | 'none' }`, labels (null removes), tier. */
    update: (id: string, patch: DevicePatch) => this.transport.json<Device>('PATCH', `/v1/devices/${encodeURIComponent(id)}`, patch),
    /** Revokes the device's credential: its agent is refused from then on. */
    revoke: (id: string) => this.transport.json<Device>('POST', `/v1/devices/${encodeURIComponent(id)}/revoke`, {}),
    /** Agents: "still alive", with live utilization; the reply says when to send the next. */
    heartbeat: (id: string, hb: Heartbeat) => this.transport.json<HeartbeatReply>('POST', `/v1/devices/${encodeURIComponent(id)}/heartbeat`, hb),
  };

  /** Joining (agents; see src/agent/join.ts, which checks the CA pin before calling `join`). */
  readonly join = {
    ca: () => this.transport.json<{ ca: string; pin: string }>('GET', '/v1/join/ca'),
    join: (req: DeviceJoin) => this.transport.json<DeviceJoined>('POST', '/v1/join', req),
  };

  /** Device profiles (cluster-wide presets; writes need an admin token). */
  readonly profiles = {
    list: () => this.transport.json<List<Profile>>('GET', '/v1/profiles'),
    get: (name: string) => this.transport.json<Profile>('GET', `/v1/profiles/${encodeURIComponent(name)}`),
    create: (req: ProfileCreate) => this.transport.json<Profile>('POST', '/v1/profiles', req),
    /** Replaces the whole profile; omitted fields take their defaults. */
    replace: (name: string, spec: ProfileSpec) => this.transport.json<Profile>('PUT', `/v1/profiles/${encodeURIComponent(name)}`, spec),
    delete: (name: string) => this.transport.json<void>('DELETE', `/v1/profiles/${encodeURIComponent(name)}`),
  };

  /** Network topology: the latest RTT/bandwidth per pair of devices (and device → server). */
  readonly topology = {
    get: (opts: { maxAgeSeconds?: number } = {}) => this.transport.json<Topology>('GET', `/v1/topology${opts.maxAgeSeconds !== undefined ? `?maxAgeSeconds=${opts.maxAgeSeconds}` : ''}`),
    /** Agents: report samples measured from `from` (an agent token bound to a device reports only for it). */
    report: (req: TopologyReport) => this.transport.json<TopologyReportResult>('POST', '/v1/topology/samples', req),
    /** The URL agents pass to `measureBandwidth` (src/agent/netprobe.ts). */
    probeUrl: () => new URL('/v1/topology/probe', this.transport.options.addr).toString(),
  };

  /** Jobs, tasks and their output (src/compute/client.ts). */
  get jobs(): JobsClient {
    return this.compute().jobs;
  }
  get tasks(): TasksClient {
    return this.compute().tasks;
  }
  get logs(): LogsClient {
    return this.compute().logs;
  }
  private compute(): { jobs: JobsClient; tasks: TasksClient; logs: LogsClient } {
    return (this.computeGroups ??= { jobs: jobsClient(this.transport), tasks: tasksClient(this.transport), logs: logsClient(this.transport) });
  }
  private computeGroups: { jobs: JobsClient; tasks: TasksClient; logs: LogsClient } | undefined;

  close(): void {
    this.transport.close();
  }
}
