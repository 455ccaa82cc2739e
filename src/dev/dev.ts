/**
 * `nexus dev`: a server and an agent in one process on an embedded SQLite store in a local data
 * dir. Plain HTTP, loopback only. The agent talks to the API over a real socket like any agent.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, type ProbeResult, type RunningAgent } from '../agent/agent.js';
import type { ServerConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/server.js';
import { SYSTEM } from '../tenancy/tokens.js';

export interface DevOptions {
  probe: () => Promise<ProbeResult>;
  /** Agent report interval. @default 5000 */
  agentIntervalMs?: number;
}

export interface RunningDev {
  server: RunningServer;
  agent: RunningAgent;
  stop(): Promise<void>;
}

/** Reuses the local agent's token across restarts while it stays valid. */
async function localAgentToken(server: RunningServer, agentDir: string): Promise<string> {
  const file = join(agentDir, 'token');
  if (existsSync(file)) {
    const saved = readFileSync(file, 'utf8').trim();
    try {
      await server.ctx.tokens.verify(saved);
      return saved;
    } catch {
      /* revoked or from another cluster: mint a new one */
    }
  }
  const { token } = await server.ctx.tokens.create(SYSTEM, { role: 'agent', name: 'nexus dev local agent' });
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}

export async function startDev(config: ServerConfig, options: DevOptions): Promise<RunningDev> {
  const server = await startServer(config);
  try {
    const agentDir = join(config.dataDir, 'agent');
    mkdirSync(agentDir, { recursive: true, mode: 0o700 });
    const token = await localAgentToken(server, agentDir);
    const agent = await startAgent({
      addr: server.url,
      token,
      dataDir: agentDir,
      probe: options.probe,
      ...(options.agentIntervalMs ? { intervalMs: options.agentIntervalMs } : {}),
      onError: (err) => server.app.log.warn({ err }, 'local agent report failed'),
    });
    return {
      server,
      agent,
      async stop() {
        await agent.stop();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
