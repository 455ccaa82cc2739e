/**
 * Test helpers for a real cluster: `nexus server` and `nexus agent` processes (through the real
 * CLI), a typed client that trusts the cluster CA, and polling with a deadline.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NexusClient } from '../client/client.js';
import { runCli, spawnCli, stopChild } from './cli.js';

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  port: number;
  dataDir: string;
  caPath: string;
  pin: string;
  adminToken: string;
  /** Environment for CLI commands against this server as admin. */
  env: NodeJS.ProcessEnv;
  client: NexusClient;
  output: () => string;
  stop(): Promise<void>;
}

/** Starts `nexus server --data-dir DIR --port PORT ARGS…` and waits until it prints its API line. */
export async function startServerProcess(dataDir: string, port = 0, args: string[] = [], home = dataDir): Promise<ServerProcess> {
  const started = await spawnCli(['server', '--data-dir', dataDir, '--port', String(port), ...args], /API:\s+(https:\/\/\S+)[\s\S]*?pin ([0-9a-f]{64})[\s\S]*?Join a device/, { NEXUS_LOG_LEVEL: 'warn' });
  const url = started.match[1]!;
  const caPath = join(dataDir, 'ca.crt');
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const client = new NexusClient({ addr: url, token: adminToken, ca: readFileSync(caPath, 'utf8'), timeoutMs: 5000 });
  return {
    child: started.child,
    url,
    port: Number(new URL(url).port),
    dataDir,
    caPath,
    pin: started.match[2]!,
    adminToken,
    env: { NEXUS_ADDR: url, NEXUS_TOKEN: adminToken, NEXUS_CA: caPath, HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_DATA_HOME: join(home, 'xdg') },
    client,
    output: started.output,
    async stop() {
      client.close();
      await stopChild(started.child);
    },
  };
}

/** Mints a join token through the CLI (`nexus tokens create --role agent --json`). */
export async function createJoinToken(server: ServerProcess, extra: string[] = []): Promise<{ token: string; id: string }> {
  const r = await runCli(['tokens', 'create', '--role', 'agent', '--json', ...extra], server.env);
  if (r.code !== 0) throw new Error(`tokens create failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { token: string; id: string };
}

export interface AgentProcess {
  child: ChildProcess;
  deviceId: string;
  output: () => string;
}

/** Environment of an agent: no admin token, nothing from the caller's config. */
export function agentEnv(home: string): NodeJS.ProcessEnv {
  return { NEXUS_TOKEN: '', NEXUS_ADDR: '', NEXUS_CA: '', HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_DATA_HOME: join(home, 'xdg') };
}

/** Starts `nexus agent` (joining when `join` is given) and waits until it heartbeats. */
export async function startAgentProcess(dataDir: string, home: string, join?: { url: string; token: string; name?: string }): Promise<AgentProcess> {
  const args = ['agent', '--data-dir', dataDir, ...(join ? ['--join', join.url, '--token', join.token] : []), ...(join?.name ? ['--name', join.name] : [])];
  const started = await spawnCli(args, /NEXUS agent ready: device (\S+)/, agentEnv(home));
  return { child: started.child, deviceId: started.match[1]!, output: started.output };
}

/** Polls `probe` every `everyMs` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves with the exit code when `child` exits (at once if it has). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
