/**
 * `nexus agent`: one per device. Probes what the device can do, registers it with the server and
 * keeps it fresh. Lifecycle: starting → running → stopping → stopped.
 */
import { hostname } from 'node:os';
import { NexusClient } from '../client/client.js';
import type { DeviceCapabilities } from '../resources/device.js';
import { VERSION } from '../version.js';
import { loadOrCreateDeviceId } from './identity.js';

export interface ProbeResult {
  capabilities: DeviceCapabilities;
  warnings: { probe: string; message: string }[];
}

export interface AgentOptions {
  addr: string;
  token: string;
  ca?: string;
  dataDir: string;
  /** Device name. @default the host name */
  name?: string;
  /** How the device's capabilities are found. */
  probe: () => Promise<ProbeResult>;
  /** How often the agent re-reports its device, in milliseconds. @default 5000 */
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

export type AgentState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface RunningAgent {
  readonly deviceId: string;
  readonly state: AgentState;
  stop(): Promise<void>;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  let state: AgentState = 'starting';
  const deviceId = loadOrCreateDeviceId(options.dataDir);
  const client = new NexusClient({ addr: options.addr, token: options.token, ...(options.ca ? { ca: options.ca } : {}) });
  const report = async () => {
    const { capabilities, warnings } = await options.probe();
    await client.devices.register({ id: deviceId, name: options.name ?? hostname(), capabilities, warnings, agentVersion: VERSION });
  };
  await report();
  const timer = setInterval(() => {
    report().catch((err) => options.onError?.(err));
  }, options.intervalMs ?? 5000);
  timer.unref();
  state = 'running';
  return {
    deviceId,
    get state() {
      return state;
    },
    async stop() {
      state = 'stopping';
      clearInterval(timer);
      client.close();
      state = 'stopped';
    },
  };
}
