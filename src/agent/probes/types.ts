import type { Capabilities } from './capabilities.js';

/**
 * Everything a probe may learn about the machine comes through this interface,
 * so tests can replay fixtures of real tool output (see env.ts).
 */
export interface ProbeEnv {
  /** filesystem root: '/' in production, a fixture dir in tests */
  root: string;
  /** `path` is absolute-looking ('/proc/cpuinfo') and resolved under root; undefined if missing or unreadable */
  readFile(path: string): Promise<string | undefined>;
  readDir(path: string): Promise<string[] | undefined>;
  /** undefined = command not found */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number }): Promise<ExecResult | undefined>;
  platform: NodeJS.Platform;
  arch: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CapabilityKey = keyof Capabilities;

/** Arrays are replaced whole; objects are merged field by field. */
export type CapabilityPatch<K extends CapabilityKey> = Capabilities[K] extends readonly unknown[]
  ? Capabilities[K]
  : Partial<Capabilities[K]>;

export interface ProbeOutput<K extends CapabilityKey> {
  value?: CapabilityPatch<K>;
  /** human-readable; a missing tool or odd output is a warning, never a throw */
  warnings: string[];
}

export interface Probe<K extends CapabilityKey = CapabilityKey> {
  /** unique; names the probe in warnings */
  readonly name: string;
  /** the part of Capabilities this probe fills */
  readonly key: K;
  /** true: cheap and changing (memory, power, GPU use), re-run on every heartbeat */
  readonly periodic: boolean;
  run(env: ProbeEnv): Promise<ProbeOutput<K>>;
}

export interface ProbeWarning {
  probe: string;
  message: string;
}

/** true when the env reads the live host rather than a fixture */
export function isLiveHost(env: ProbeEnv): boolean {
  return env.root === '/';
}

/** Per-platform readers of one probe; a platform without one yields a warning, not a throw. */
export type PlatformReaders<T> = Partial<Record<NodeJS.Platform, (env: ProbeEnv, warnings: string[]) => Promise<T | undefined>>>;

/** Runs the reader for `env.platform`. */
export async function readForPlatform<T>(env: ProbeEnv, readers: PlatformReaders<T>, warnings: string[]): Promise<T | undefined> {
  const read = readers[env.platform];
  if (!read) {
    warnings.push(`platform ${env.platform} not supported`);
    return undefined;
  }
  return read(env, warnings);
}
