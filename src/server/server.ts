/**
 * `nexus server`: opens the store, takes part in leadership, bootstraps the cluster, serves the
 * API and runs the controllers while it leads. Lifecycle: starting → running → stopping → stopped.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type RouteModule } from '../api/app.js';
import type { ApiContext } from '../api/context.js';
import { loadOrCreateCa, loadOrIssueServerCert, serverNames, type ClusterCa } from '../cluster/ca.js';
import { DeviceService } from '../cluster/devices.js';
import { HealthController, resolveHealthOptions, type HealthOptions } from '../cluster/health.js';
import { HeartbeatRelay } from '../cluster/heartbeat-relay.js';
import { HeartbeatStreams } from '../cluster/heartbeat-stream.js';
import { HeartbeatTable } from '../cluster/heartbeats.js';
import { ProfileService } from '../cluster/profiles.js';
import { TopologyService } from '../cluster/topology.js';
import { ControllerManager, type Controller } from '../cluster/controllers.js';
import { ComputeController, type ComputeControllerOptions } from '../compute/controller.js';
import { LeaseLeadership, SingleLeadership, type Leadership } from '../cluster/leadership.js';
import { openStore } from '../store/open.js';
import type { Clock, StateStore } from '../store/types.js';
import { TenantService } from '../tenancy/tenants.js';
import { TokenService } from '../tenancy/tokens.js';
import { VERSION } from '../version.js';
import { bootstrap, type BootstrapResult } from './bootstrap.js';
import type { ServerConfig } from './config.js';

export type ServerState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface RunningServer {
  readonly config: ServerConfig;
  readonly url: string;
  readonly port: number;
  readonly store: StateStore;
  readonly app: FastifyInstance;
  readonly ctx: ApiContext;
  readonly leadership: Leadership;
  readonly boot: BootstrapResult;
  /** The cluster CA, when serving TLS: its pin and this server's copy of the certificate. */
  readonly ca?: { readonly pin: string; readonly certPath: string };
  readonly state: ServerState;
  stop(): Promise<void>;
}

export interface ServerExtensions {
  controllers?: Controller[];
  routes?: RouteModule[];
  clock?: Clock;
  /** Device health thresholds (docs/adr/005-device-health.md). */
  health?: HealthOptions;
  /** Extra names (DNS or IP) for the TLS certificate, like k3s's --tls-san. */
  tlsSans?: string[];
  /** Options of the compute controller (scheduler, retries, lost tasks); false runs none. */
  compute?: Partial<Omit<ComputeControllerOptions, 'store' | 'leadership' | 'clock'>> | false;
}

export async function startServer(config: ServerConfig, ext: ServerExtensions = {}): Promise<RunningServer> {
  let state: ServerState = 'starting';
  const clock = ext.clock ?? Date.now;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const healthOptions = resolveHealthOptions(ext.health);
  const store = await openStore(config.store);
  let ca: ClusterCa | undefined;
  let https: { key: string; cert: string } | undefined;
  if (config.tls) {
    ca = await loadOrCreateCa(store, config.dataDir, clock());
    const leaf = await loadOrIssueServerCert(ca, config.dataDir, serverNames(config.host, ext.tlsSans), clock());
    https = { key: leaf.keyPem, cert: leaf.certPem };
  }
  const tenants = new TenantService(store, clock);
  const tokens = new TokenService(store, tenants, clock, ca ? { joinPin: ca.pin } : {});
  const heartbeats = new HeartbeatTable({ clock, heartbeatMs: healthOptions.heartbeatMs, maxPerSecond: healthOptions.maxHeartbeatsPerSecond });
  const devices = new DeviceService(store, clock, tokens, heartbeats);
  const profiles = new ProfileService(store, clock);
  const topology = new TopologyService(store, clock);
  const boot = await bootstrap(store, tenants, tokens, config.dataDir, clock());
  const serverId = randomUUID();
  const leadership: Leadership = config.store.engine === 'sqlite' ? new SingleLeadership(store, serverId) : new LeaseLeadership(store, serverId);
  let log: FastifyInstance['log'] | undefined;
  const health = new HealthController(store, leadership, heartbeats, clock, healthOptions, (t) => log?.info({ device: t.deviceId, from: t.from, to: t.to }, `device ${t.name} ${t.from} → ${t.to}`));
  // One SQLite server has every heartbeat already; several servers relay theirs to each other.
  const relay = config.store.engine === 'sqlite' ? undefined : new HeartbeatRelay(store, heartbeats, serverId, clock);
  const compute = ext.compute === false
    ? []
    : [new ComputeController({
      store, leadership, clock, lostGraceMs: healthOptions.rescheduleGraceMs,
      onError: (err) => log?.warn({ err }, 'compute controller'),
      ...ext.compute,
    })];
  const controllers = new ControllerManager(leadership, [health, ...compute, ...(ext.controllers ?? [])]);
  const ctx: ApiContext = {
    store,
    tenants,
    tokens,
    devices,
    heartbeatStreams: new HeartbeatStreams(() => devices.streamIdleMs()),
    profiles,
    topology,
    ...(ca ? { ca: { certPem: ca.certPem, pin: ca.pin } } : {}),
    version: VERSION,
    readiness: () => {
      if (state !== 'running') return { ready: false, detail: `server is ${state}` };
      if (controllers.state === 'idle') return { ready: false, detail: 'controllers are not running' };
      return { ready: true, detail: `store ${store.engine} open; controllers ${controllers.state} (${leadership.state})` };
    },
  };
  const app = await buildApp(ctx, { logger: config.logLevel === 'silent' ? false : { level: config.logLevel }, ...(https ? { https } : {}) }, ext.routes ?? []);
  log = app.log;
  relay?.start();
  await leadership.start();
  await controllers.start();
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  // A wildcard listener is reached locally through loopback (which the certificate covers).
  const reachable = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '::1' : config.host;
  const host = reachable.includes(':') ? `[${reachable}]` : reachable;
  state = 'running';
  return {
    config,
    url: `${config.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    store,
    app,
    ctx,
    leadership,
    boot,
    ...(ca ? { ca: { pin: ca.pin, certPath: join(config.dataDir, 'ca.crt') } } : {}),
    get state() {
      return state;
    },
    async stop() {
      if (state === 'stopping' || state === 'stopped') return;
      state = 'stopping';
      controllers.stop();
      await app.close();
      await relay?.stop();
      await leadership.stop();
      await store.close();
      state = 'stopped';
    },
  };
}
