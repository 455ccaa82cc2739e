/** Probes this machine through the real OS (the agent's production probe). */
import type { DeviceCapabilities } from '../resources/device.js';
import type { ProbeResult } from './agent.js';
import { hostProbeEnv } from './probes/env.js';
import { runProbes } from './probes/index.js';

export async function probeHost(): Promise<ProbeResult> {
  const { capabilities, warnings } = await runProbes(hostProbeEnv());
  return { capabilities: capabilities as unknown as DeviceCapabilities, warnings };
}
