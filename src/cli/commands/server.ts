import { isIPv4 } from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import { resolveServerConfig } from '../../config/resolve.js';
import { resolveHealthOptions, type HealthOptions } from '../../cluster/health.js';
import { NexusError } from '../../errors/catalogue.js';
import { announce } from '../../cluster/discovery/index.js';
import { startServer } from '../../server/server.js';

function millis(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive whole number of milliseconds');
  return n;
}

interface ServerOpts {
  dataDir?: string;
  host?: string;
  port?: string;
  store?: string;
  etcd?: string;
  logLevel?: string;
  tlsSan: string[];
  heartbeatMs?: number;
  unreachableMs?: number;
  downMs?: number;
  restartGraceMs?: number;
  mdns?: boolean;
  mdnsInterface?: string;
}

export function serverCommand(program: Command): void {
  program
    .command('server')
    .description('run a NEXUS server: the API over TLS with the cluster CA (made on first start), the store, the controllers')
    .option('--data-dir <dir>', 'state, CA, certificates and the admin token (env NEXUS_DATA_DIR; default ~/.local/share/nexus)')
    .option('--host <host>', 'address to listen on (env NEXUS_HOST; default 127.0.0.1; 0.0.0.0 for every interface)')
    .option('--port <port>', 'API port (env NEXUS_PORT; default 7070; 0 picks a free one)')
    .option('--store <engine>', 'sqlite (embedded, one server) or etcd (several servers) (env NEXUS_STORE; default sqlite)')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated (env NEXUS_ETCD_ENDPOINTS)')
    .option('--log-level <level>', 'trace, debug, info, warn, error, silent (env NEXUS_LOG_LEVEL; default info)')
    .option('--tls-san <name>', 'another DNS name or IP the server is reached by, for its certificate (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--heartbeat-ms <ms>', 'heartbeat interval agents use (default 1000)', millis)
    .option('--unreachable-ms <ms>', 'no heartbeat for this long: unreachable (default 2500)', millis)
    .option('--down-ms <ms>', 'no heartbeat for this long: down (default 4000)', millis)
    .option('--restart-grace-ms <ms>', 'extra time agents get after a server (re)start or leader change (default 10000)', millis)
    .option('--no-mdns', 'do not announce _nexus._tcp on the LAN (announced by default unless listening on loopback only)')
    .option('--mdns-interface <name|ip>', 'announce on this interface (default: the --host address when it is one IPv4 address, else the one multicast routes to)')
    .action(async (opts: ServerOpts, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { config?: string };
      const started = process.hrtime.bigint();
      const config = resolveServerConfig({
        ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), ...(opts.host ? { host: opts.host } : {}), ...(opts.port ? { port: opts.port } : {}),
        ...(opts.store ? { store: opts.store } : {}), ...(opts.etcd ? { etcd: opts.etcd } : {}), ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
        ...(g.config ? { config: g.config } : {}),
      }, 'server');
      const health: HealthOptions = {
        ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}), ...(opts.unreachableMs ? { unreachableAfterMs: opts.unreachableMs } : {}),
        ...(opts.downMs ? { downAfterMs: opts.downMs } : {}), ...(opts.restartGraceMs ? { restartGraceMs: opts.restartGraceMs } : {}),
      };
      try {
        resolveHealthOptions(health);
      } catch (err) {
        throw new NexusError('NEXUS_E_CONFIG', { field: 'heartbeat-ms', detail: (err as Error).message });
      }
      const server = await startServer(config, { health, tlsSans: opts.tlsSan });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const out = process.stdout;
      out.write(`NEXUS server ${server.ctx.version} ready in ${ms.toFixed(0)} ms\n`);
      out.write(`  API:         ${server.url}\n`);
      out.write(`  store:       ${config.store.engine === 'sqlite' ? config.store.path : `etcd ${config.store.endpoints.join(',')}`}\n`);
      if (server.ca) out.write(`  CA:          ${server.ca.certPath}  (pin ${server.ca.pin})\n`);
      if (server.boot.newAdminToken) out.write(`  admin token: ${server.boot.newAdminToken}  (saved to ${server.boot.adminTokenPath}; shown once)\n`);
      else out.write(`  admin token: in ${server.boot.adminTokenPath}\n`);
      const loopbackOnly = ['127.0.0.1', '::1', 'localhost'].includes(config.host);
      // Listening on one IPv4 address: announce on that interface by default, so the A record
      // carries only the address the API is reachable at (not every address of a multi-homed
      // host), and sending needs no multicast route (ADR 006).
      const mdnsInterface = opts.mdnsInterface ?? (isIPv4(config.host) && config.host !== '0.0.0.0' ? config.host : undefined);
      const announcer = opts.mdns !== false && !loopbackOnly && server.ca
        ? announce({ port: server.port, clusterId: server.boot.cluster.id, caPin: server.ca.pin, ...(mdnsInterface ? { interface: mdnsInterface } : {}) })
        : undefined;
      if (announcer) {
        await announcer.ready.then(
          () => out.write(`  mDNS:        announcing _nexus._tcp as ${announcer.instance}\n`),
          (err: Error) => process.stderr.write(`warning: mDNS announce failed (${err.message}); agents need --join\n`),
        );
      }
      const env = `NEXUS_ADDR=${server.url} NEXUS_CA=${server.ca?.certPath ?? ''} NEXUS_TOKEN=$(cat ${server.boot.adminTokenPath})`;
      out.write(`Join a device: nexus agent --join ${server.url} --token "$(${env} nexus tokens create --role agent)"\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        out.write(`${signal}: stopping\n`);
        (announcer?.stop() ?? Promise.resolve()).then(() => server.stop()).then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
