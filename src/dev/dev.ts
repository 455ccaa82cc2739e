/**
 * `nexus dev`: a server and an agent in one process on an embedded SQLite store in a local data
 * dir. Plain HTTP, loopback only. The agent talks to the API over a real socket like any agent.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, type ProbeResult, type RunningAgent } from '../agent/agent.js';
import { joinCluster, loadCredential, type AgentCredential } from '../agent/join.js';
import { hostSampler } from '../agent/utilization.js';
import type { HealthOptions } from '../cluster/health.js';
import type { ServerConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/server.js';
import { SYSTEM } from '../tenancy/tokens.js';

export interface DevOptions {
  probe: () => Promise<ProbeResult>;
  /** Device health thresholds. @default docs/adr/005-device-health.md */
  health?: HealthOptions;
}

export interface RunningDev {
  server: RunningServer;
  agent: RunningAgent;
  stop(): Promise<void>;
}

/**
 * The local agent joins like any agent (POST /v1/join over the loopback socket) with a join token
 * minted in-process and revoked right after; restarts reuse the saved device credential.
 */
async function localCredential(server: RunningServer, agentDir: string, probe: () => Promise<ProbeResult>): Promise<AgentCredential> {
  const saved = loadCredential(agentDir);
  if (saved) {
    try {
      const p = await server.ctx.tokens.verify(saved.token);
      if (p.deviceId === saved.deviceId) return { ...saved, server: server.url };
    } catch {
      /* revoked or from another cluster: join again */
    }
  }
  const { token, item } = await server.ctx.tokens.create(SYSTEM, { role: 'agent', name: 'nexus dev local agent (join)', ttlSeconds: 300 });
  try {
    return await joinCluster({ server: server.url, token, dataDir: agentDir, probe });
  } finally {
    await server.ctx.tokens.revoke(SYSTEM, item.id);
  }
}

export async function startDev(config: ServerConfig, options: DevOptions): Promise<RunningDev> {
  const server = await startServer(config, options.health ? { health: options.health } : {});
  try {
    const agentDir = join(config.dataDir, 'agent');
    mkdirSync(agentDir, { recursive: true, mode: 0o700 });
    const cred = await localCredential(server, agentDir, options.probe);
    const sampler = hostSampler();
    const agent = await startAgent({
      addr: server.url,
      token: cred.token,
      deviceId: cred.deviceId,
      probe: options.probe,
      sample: () => sampler.sample(),
      tasks: { dataDir: agentDir },
      onError: (err) => server.app.log.warn({ err }, 'local agent heartbeat failed'),
      onFatal: (err) => server.app.log.error({ err }, 'local agent stopped: the server refused its credential'),
    });
    return {
      server,
      agent,
      async stop() {
        sampler.stop();
        await agent.stop();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
