/**
 * `nexus server`: opens the store, takes part in leadership, bootstraps the cluster, serves the
 * API and runs the controllers while it leads. Lifecycle: starting → running → stopping → stopped.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildApp, type RouteModule } from '../api/app.js';
import type { ApiContext } from '../api/context.js';
import { DeviceService } from '../cluster/devices.js';
import { ControllerManager, type Controller } from '../cluster/controllers.js';
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
  readonly state: ServerState;
  stop(): Promise<void>;
}

export interface ServerExtensions {
  controllers?: Controller[];
  routes?: RouteModule[];
  clock?: Clock;
}

export async function startServer(config: ServerConfig, ext: ServerExtensions = {}): Promise<RunningServer> {
  let state: ServerState = 'starting';
  const clock = ext.clock ?? Date.now;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(config.store);
  const tenants = new TenantService(store, clock);
  const tokens = new TokenService(store, tenants, clock);
  const devices = new DeviceService(store, clock);
  const boot = await bootstrap(store, tenants, tokens, config.dataDir, clock());
  const serverId = randomUUID();
  const leadership: Leadership = config.store.engine === 'sqlite' ? new SingleLeadership(store, serverId) : new LeaseLeadership(store, serverId);
  const controllers = new ControllerManager(leadership, ext.controllers ?? []);
  const ctx: ApiContext = {
    store,
    tenants,
    tokens,
    devices,
    version: VERSION,
    readiness: () => {
      if (state !== 'running') return { ready: false, detail: `server is ${state}` };
      if (controllers.state === 'idle') return { ready: false, detail: 'controllers are not running' };
      return { ready: true, detail: `store ${store.engine} open; controllers ${controllers.state} (${leadership.state})` };
    },
  };
  const app = await buildApp(ctx, { logger: config.logLevel === 'silent' ? false : { level: config.logLevel } }, ext.routes ?? []);
  await leadership.start();
  await controllers.start();
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
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
    get state() {
      return state;
    },
    async stop() {
      if (state === 'stopping' || state === 'stopped') return;
      state = 'stopping';
      controllers.stop();
      await app.close();
      await leadership.stop();
      await store.close();
      state = 'stopped';
    },
  };
}
