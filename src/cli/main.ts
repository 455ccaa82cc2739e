/**
 * The `nexus` command. Client commands reach the API through the same typed client the SDK
 * exports; configuration is resolved in src/config/resolve.ts (flags > env > file > defaults).
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { agentCommand } from './commands/agent.js';
import { devCommand } from './commands/dev.js';
import { deviceCommand } from './commands/device.js';
import { devicesCommand } from './commands/devices.js';
import { profilesCommand } from './commands/profiles.js';
import { tenantsCommand } from './commands/tenants.js';
import { tokensCommand } from './commands/tokens.js';
import { topologyCommand } from './commands/topology.js';
import { serverCommand } from './commands/server.js';
import { jobsCommand } from './commands/jobs.js';
import { logsCommand } from './commands/logs.js';
import { runCommand } from './commands/run.js';
import { reportError } from './output.js';

export function buildProgram(): Command {
  const program = new Command('nexus')
    .description('NEXUS: one pool of every device you own, for AI applications')
    .version(VERSION)
    .option('--addr <url>', 'server address (env NEXUS_ADDR; default http://127.0.0.1:7070)')
    .option('--token <token>', 'API token (env NEXUS_TOKEN; default: the local dev admin token, if any)')
    .option('--ca <file>', 'CA certificate of a TLS server (env NEXUS_CA)')
    .option('--config <file>', 'JSON config file (env NEXUS_CONFIG; default ~/.config/nexus/config.json)')
    .showHelpAfterError()
    .exitOverride();
  devCommand(program);
  serverCommand(program);
  agentCommand(program);
  tenantsCommand(program);
  tokensCommand(program);
  devicesCommand(program);
  deviceCommand(program);
  profilesCommand(program);
  topologyCommand(program);
  runCommand(program);
  jobsCommand(program);
  logsCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(err, argv.includes('--json'));
  }
}
