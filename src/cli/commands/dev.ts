import type { Command } from 'commander';
import { probeHost } from '../../agent/probe-host.js';
import { resolveServerConfig } from '../../config/resolve.js';
import { startDev } from '../../dev/dev.js';

export function devCommand(program: Command): void {
  program
    .command('dev')
    .description('run a server and an agent in one process on an embedded SQLite store (plain HTTP, loopback only)')
    .option('--data-dir <dir>', 'where state, the admin token and agent files live (env NEXUS_DATA_DIR; default ~/.local/share/nexus)')
    .option('--port <port>', 'API port on 127.0.0.1 (env NEXUS_PORT; default 7070; 0 picks a free one)')
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error, silent (env NEXUS_LOG_LEVEL; default warn)')
    .action(async (opts: { dataDir?: string; port?: string; logLevel?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { config?: string };
      const started = process.hrtime.bigint();
      const config = resolveServerConfig({ ...opts, ...(g.config ? { config: g.config } : {}) }, 'dev');
      const dev = await startDev(config, { probe: probeHost });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const device = await dev.server.ctx.devices.list({ tokenId: 'system', role: 'admin', tenant: 'default' });
      const out = process.stdout;
      out.write(`NEXUS dev ${dev.server.ctx.version} ready in ${ms.toFixed(0)} ms\n`);
      out.write(`  API:         ${dev.server.url}\n`);
      out.write(`  data dir:    ${config.dataDir}\n`);
      if (dev.server.boot.newAdminToken) out.write(`  admin token: ${dev.server.boot.newAdminToken}  (saved to ${dev.server.boot.adminTokenPath}; shown once)\n`);
      else out.write(`  admin token: in ${dev.server.boot.adminTokenPath}\n`);
      for (const d of device) out.write(`  device:      ${d.name} (${d.id}) ${d.state}\n`);
      out.write(`Try: NEXUS_ADDR=${dev.server.url} NEXUS_TOKEN=$(cat ${dev.server.boot.adminTokenPath}) npx nexus devices\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        out.write(`\n${signal}: stopping\n`);
        dev.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
