import { emptyCapabilities, type Capabilities } from './capabilities.js';
import { acceleratorsProbe } from './accelerators.js';
import { cpuProbe } from './cpu.js';
import { disksProbe } from './disks.js';
import { gpusProbe } from './gpus.js';
import { memoryProbe } from './memory.js';
import { networkProbe } from './network.js';
import { osProbe } from './os.js';
import { powerProbe } from './power.js';
import { cpuSpeedProbe } from './speed.js';
import type { CapabilityKey, Probe, ProbeEnv, ProbeWarning } from './types.js';

export type { Capabilities } from './capabilities.js';
export type { Probe, ProbeEnv, ProbeWarning } from './types.js';
export { fixtureProbeEnv, hostProbeEnv } from './env.js';
export {
  acceleratorsProbe, cpuProbe, cpuSpeedProbe, disksProbe, gpusProbe, memoryProbe, networkProbe, osProbe, powerProbe,
};

/** Every probe, in merge order (cpuSpeed after cpu: it adds speedScore to the cpu section). */
export const ALL_PROBES: readonly Probe[] = [
  osProbe, cpuProbe, cpuSpeedProbe, memoryProbe, disksProbe, networkProbe, gpusProbe, acceleratorsProbe, powerProbe,
];

/** The probes worth re-running on every heartbeat. */
export const PERIODIC_PROBES: readonly Probe[] = ALL_PROBES.filter((p) => p.periodic);

export interface ProbeReport {
  capabilities: Capabilities;
  warnings: ProbeWarning[];
}

/**
 * Runs the probes concurrently and merges their parts into one Capabilities.
 * A probe that throws becomes a warning; its section keeps the neutral default.
 *
 * @example
 * const { capabilities, warnings } = await runProbes(hostProbeEnv());
 * // heartbeat refresh: only the cheap, changing parts
 * const fresh = await runProbes(hostProbeEnv(), PERIODIC_PROBES);
 */
export async function runProbes(env: ProbeEnv, probes: readonly Probe[] = ALL_PROBES): Promise<ProbeReport> {
  const capabilities = emptyCapabilities(env.platform, env.arch);
  const warnings: ProbeWarning[] = [];
  const outputs = await Promise.all(
    probes.map((p) =>
      p.run(env).catch((err: unknown) => ({
        value: undefined,
        warnings: [`probe failed: ${err instanceof Error ? err.message : String(err)}`],
      })),
    ),
  );
  probes.forEach((probe, i) => {
    const out = outputs[i]!;
    for (const message of out.warnings) warnings.push({ probe: probe.name, message });
    if (out.value === undefined) return;
    const key: CapabilityKey = probe.key;
    const target = capabilities as unknown as Record<CapabilityKey, unknown>;
    target[key] = Array.isArray(out.value) ? out.value : { ...(target[key] as object), ...(out.value as object) };
  });
  return { capabilities: withoutUndefined(capabilities), warnings };
}

/** JSON-clean copy: optional fields a probe could not learn are absent, not `undefined`. */
function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutUndefined) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)]),
    ) as T;
  }
  return value;
}
