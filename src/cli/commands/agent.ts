import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { startAgent } from '../../agent/agent.js';
import { credentialPath, joinCluster, loadCredential } from '../../agent/join.js';
import { probeHost } from '../../agent/probe-host.js';
import { hostSampler } from '../../agent/utilization.js';
import { defaultDataDir } from '../../config/resolve.js';
import { NexusError } from '../../errors/catalogue.js';
import { discover } from '../../cluster/discovery/index.js';
import { parseAnyToken } from '../../tenancy/join-token.js';
import { reportError } from '../output.js';

interface AgentOpts {
  join?: string;
  dataDir?: string;
  name?: string;
  json?: boolean;
  discover?: boolean;
  discoverTimeout?: string;
}

function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
}

/** Finds, on the LAN, the server whose CA pin is the join token's; the TLS handshake still checks it. */
async function discoverServer(token: string, timeoutMs: number): Promise<string> {
  const parsed = parseAnyToken(token);
  if (!parsed?.pin) throw new NexusError('NEXUS_E_CONFIG', { field: 'token', detail: '--discover needs a join token (NX1<pin>::…) whose CA pin identifies the cluster' });
  // mDNS is per link: ask on every addressed interface at once, not only where the kernel routes
  // multicast (a multi-homed host, or one without a default or multicast route, would not find it).
  const ifaces = Object.entries(networkInterfaces()).filter(([, addrs]) => addrs?.some((a) => a.family === 'IPv4' && !a.internal)).map(([name]) => name);
  const ms = Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 5000;
  const settled = await Promise.allSettled((ifaces.length ? ifaces : [undefined]).map((i) => discover({ timeoutMs: ms, ...(i ? { interface: i } : {}) })));
  const lists = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (!lists.length) throw (settled[0] as PromiseRejectedResult).reason;
  const found = [...new Map(lists.flat().map((s) => [`${s.instance} ${s.addr}`, s])).values()];
  const match = found.find((s) => s.caPin === parsed.pin);
  if (!match) {
    const seen = found.length ? `; saw ${found.map((s) => `${s.addr} (pin ${s.caPin.slice(0, 12)}…)`).join(', ')}` : '';
    throw new NexusError('NEXUS_E_CONFIG', { field: 'discover', detail: `no NEXUS server with the token's CA pin answered on the LAN within ${timeoutMs} ms${seen}; use --join https://HOST:PORT` });
  }
  process.stdout.write(`discovered ${match.addr} (${match.host})\n`);
  return match.addr;
}

export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the agent of this device: join a cluster once (--join, --token), then register, heartbeat and report')
    .option('--join <url>', 'server to join, https://HOST:PORT (needed only until the device has joined)')
    .option('--token <token>', 'the join token, NX1<pin>::<id>.<secret> (env NEXUS_TOKEN; from `nexus tokens create --role agent`)')
    .option('--data-dir <dir>', 'where the device credential lives (env NEXUS_AGENT_DATA_DIR; default ~/.local/share/nexus-agent); one per agent')
    .option('--name <name>', 'device name (default: the host name)')
    .option('--discover', 'find the server on the LAN over mDNS (_nexus._tcp) instead of --join; the join token\'s CA pin picks the cluster')
    .option('--discover-timeout <ms>', 'how long to look on the LAN (default 5000)')
    .action(async (opts: AgentOpts, cmd: Command) => {
      // `--token` and `--ca` are also global options; commander hands them to the program.
      const g = cmd.optsWithGlobals() as { token?: string; ca?: string; json?: boolean };
      const rawDir = opts.dataDir ?? process.env.NEXUS_AGENT_DATA_DIR ?? join(dirname(defaultDataDir(process.env)), 'nexus-agent');
      const dataDir = isAbsolute(rawDir) ? rawDir : resolve(rawDir);
      const out = process.stdout;
      let cred = loadCredential(dataDir);
      if (cred && opts.join && new URL(opts.join).origin !== cred.server) {
        process.stderr.write(`note: ${dataDir} already joined ${cred.server}; ignoring --join ${opts.join} (use another --data-dir for another agent)\n`);
      }
      if (!cred) {
        const token = g.token ?? process.env.NEXUS_TOKEN;
        if (!opts.join && opts.discover && token) opts.join = await discoverServer(token, Number(opts.discoverTimeout ?? 5000));
        if (!opts.join || !token) throw new NexusError('NEXUS_E_CONFIG', { field: opts.join ? 'token' : 'join', detail: `${dataDir} has not joined a cluster yet: give --join https://HOST:PORT and --token JOIN_TOKEN` });
        const ca = g.ca ? readFileSync(g.ca, 'utf8') : undefined;
        cred = await joinCluster({ server: opts.join, token, dataDir, probe: probeHost, ...(opts.name ? { name: opts.name } : {}), ...(ca ? { ca } : {}) });
        out.write(`joined ${cred.server} as device ${cred.deviceId}; credential saved to ${credentialPath(dataDir)}\n`);
      }
      const sampler = hostSampler();
      let failingSince: string | undefined;
      const agent = await startAgent({
        addr: cred.server,
        token: cred.token,
        deviceId: cred.deviceId,
        ...(cred.ca ? { ca: cred.ca } : {}),
        ...(opts.name ? { name: opts.name } : {}),
        probe: probeHost,
        sample: () => sampler.sample(),
        tasks: { dataDir },
        onError: (err) => {
          const msg = describeError(err);
          if (failingSince === msg) return;
          failingSince = msg;
          process.stderr.write(`agent: reaching ${cred!.server} failed (${msg}); retrying\n`);
        },
        onRecovered: () => {
          failingSince = undefined;
          process.stderr.write(`agent: heartbeats reach ${cred!.server} again\n`);
        },
        onFatal: (err) => {
          sampler.stop();
          process.exit(reportError(err, Boolean(g.json)));
        },
      });
      out.write(`NEXUS agent ready: device ${agent.deviceId} heartbeating to ${cred.server}\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        out.write(`${signal}: stopping\n`);
        sampler.stop();
        agent.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
