/**
 * Starts a real, throw-away etcd (Debian's `etcd-server`, `/usr/bin/etcd`) on loopback for
 * integration tests and benchmarks: free ports, a temp data dir, fast raft timings.
 *
 * @example
 * const etcd = await startEtcd();
 * const store = await EtcdStore.open({ endpoints: [etcd.endpoint] });
 * // ...
 * await store.close();
 * await etcd.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningEtcd {
  /** Client URL, e.g. `http://127.0.0.1:41234`. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** Kills the process (by PID) and removes the data dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops etcd and starts it again on the same ports and data: clients see a real outage. */
  restart(): Promise<void>;
}

export interface StartEtcdOptions {
  /** @default process.env.NEXUS_ETCD_BIN ?? '/usr/bin/etcd' */
  binary?: string;
  /** How long to wait for `/health` to answer. @default 20000 */
  readyTimeoutMs?: number;
}

/** A port the kernel just handed out on 127.0.0.1 (listen on 0, read it, close). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** etcd 3.4 refuses to run on architectures other than amd64/ppc64le unless told to. */
function archEnv(): Record<string, string> {
  const goArch: Record<string, string> = { arm64: 'arm64', arm: 'arm', s390x: 's390x', ia32: '386' };
  const arch = goArch[process.arch];
  return arch ? { ETCD_UNSUPPORTED_ARCH: arch } : {};
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** If the test process dies without calling stop(), do not leave etcd servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });
}

async function waitHealthy(endpoint: string, child: ChildProcess, stderr: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${stderr()}`);
    }
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: string };
      if (res.ok && body.health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`etcd at ${endpoint} was not healthy after ${timeoutMs} ms:\n${stderr()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

interface Spec {
  readonly binary: string;
  readonly dataDir: string;
  readonly endpoint: string;
  readonly peer: string;
  readonly readyTimeoutMs: number;
}

/** Runs etcd for `spec` and resolves once healthy; kills it again if it never gets there. */
async function spawnEtcd(spec: Spec, state: 'new' | 'existing'): Promise<ChildProcess> {
  const args = [
    '--name', 'nexus-test',
    '--data-dir', spec.dataDir,
    '--listen-client-urls', spec.endpoint,
    '--advertise-client-urls', spec.endpoint,
    '--listen-peer-urls', spec.peer,
    '--initial-advertise-peer-urls', spec.peer,
    '--initial-cluster', `nexus-test=${spec.peer}`,
    '--initial-cluster-state', state,
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
    '--logger', 'zap',
    '--log-level', 'error',
  ];
  const child = spawn(spec.binary, args, { env: { ...process.env, ...archEnv() }, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  installExitHook();
  let errTail = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    errTail = (errTail + s).slice(-4000);
  });
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  spawnFailed.catch(() => {});
  try {
    await Promise.race([waitHealthy(spec.endpoint, child, () => errTail, spec.readyTimeoutMs), spawnFailed]);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return child;
}

async function startOnce(binary: string, readyTimeoutMs: number): Promise<RunningEtcd> {
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const spec: Spec = { binary, dataDir, endpoint: `http://127.0.0.1:${clientPort}`, peer: `http://127.0.0.1:${peerPort}`, readyTimeoutMs };
  let child: ChildProcess;
  try {
    child = await spawnEtcd(spec, 'new');
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    endpoint: spec.endpoint,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopChild(child);
      await rm(dataDir, { recursive: true, force: true });
    },
    async restart() {
      if (stopped) throw new Error('etcd was stopped');
      await stopChild(child);
      child = await spawnEtcd(spec, 'existing');
    },
  };
}

/**
 * Spawns `/usr/bin/etcd` on free 127.0.0.1 client and peer ports with a temp data dir and waits
 * until `/health` says true. Retries twice if the ports were taken in the meantime.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<RunningEtcd> {
  const binary = options.binary ?? process.env.NEXUS_ETCD_BIN ?? '/usr/bin/etcd';
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(binary, readyTimeoutMs);
    } catch (err) {
      lastErr = err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
    }
  }
  throw lastErr;
}
