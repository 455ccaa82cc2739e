/** What every client command needs: the resolved config and a client built from it. */
import type { Command } from 'commander';
import { NexusClient } from '../client/client.js';
import { resolveClientConfig } from '../config/resolve.js';

export interface GlobalOpts {
  addr?: string;
  token?: string;
  ca?: string;
  config?: string;
  json?: boolean;
}

export function clientFor(cmd: Command): NexusClient {
  const g = cmd.optsWithGlobals() as GlobalOpts;
  const cfg = resolveClientConfig({
    ...(g.addr ? { addr: g.addr } : {}),
    ...(g.token ? { token: g.token } : {}),
    ...(g.ca ? { ca: g.ca } : {}),
    ...(g.config ? { config: g.config } : {}),
  });
  return new NexusClient({ addr: cfg.addr, ...(cfg.token ? { token: cfg.token } : {}), ...(cfg.ca ? { ca: cfg.ca } : {}) });
}

export function wantsJson(cmd: Command): boolean {
  return Boolean((cmd.optsWithGlobals() as GlobalOpts).json);
}
