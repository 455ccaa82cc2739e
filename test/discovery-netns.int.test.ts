// LAN discovery across hosts: two network namespaces joined by a veth pair stand in for two
// machines on one link. The announcer runs in A, the browser in B, each a real process
// (test/fixtures/discovery-peer.ts) on the real mDNS port 5353 — which is private to each
// namespace, so this never touches the host's network. Needs root and `ip netns`; skipped otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DiscoveredServer } from '../src/cluster/discovery/index.js';

const PEER = fileURLToPath(new URL('./fixtures/discovery-peer.js', import.meta.url));
const PIN_A = 'a1'.repeat(32);
const PIN_B = 'b2'.repeat(32);

function whySkip(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (ip netns)';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return `ip netns is unavailable: ${r.error?.message ?? r.stderr.trim()}`;
  return undefined;
}
const skipReason = whySkip();

// Unique per run: namespace and interface names carry the pid (interface names ≤ 15 bytes).
const id = process.pid;
const NS_A = `nx-a-${id}`;
const NS_B = `nx-b-${id}`;
const IF_A = `nxa${id}`;
const IF_B = `nxb${id}`;
const NET = `10.${(id >> 8) & 255}.${id & 255}`;
const IP_A = `${NET}.1`;
const IP_B = `${NET}.2`;

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
}

const children = new Set<ChildProcess>();
let created = false;

/** Synchronous so it also runs from process 'exit'. Deleting a namespace removes its veth end,
 * and a veth pair dies with either end. */
function cleanupSync(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  if (!created) return;
  created = false;
  for (const ns of [NS_A, NS_B]) spawnSync('ip', ['netns', 'del', ns], { timeout: 5000 });
}

/** Waits until the interface has carrier: libuv (os.networkInterfaces) hides interfaces that are
 * not IFF_RUNNING, and a veth only gets there a moment after both ends are up. */
async function waitOperUp(ns: string, dev: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = spawnSync('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev], { encoding: 'utf8', timeout: 5000 });
    const state = r.status === 0 ? (JSON.parse(r.stdout) as { operstate?: string }[])[0]?.operstate : undefined;
    if (state === 'UP') return;
    if (Date.now() > deadline) throw new Error(`${dev} in ${ns} is not up (operstate ${String(state)})`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Starts the peer in a namespace. */
function peer(ns: string, mode: 'announce' | 'discover', opts: object): { child: ChildProcess; out: () => string } {
  // `ip netns exec` execs node in place, so killing the child kills node.
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PEER, mode, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

/** Starts an announcer in `ns` and waits for its first announcement. */
async function announcer(ns: string, opts: object): Promise<ChildProcess> {
  const p = peer(ns, 'announce', opts);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`announcer not ready in 5 s:\n${p.out()}`)), 5000);
    p.child.stdout!.on('data', () => {
      if (/announcing /.test(p.out())) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`announcer exited (${String(code)}):\n${p.out()}`));
    });
  });
  return p.child;
}

/** Runs a browser in `ns` to completion and returns what it found. */
function browse(ns: string, opts: object): Promise<DiscoveredServer[]> {
  const p = peer(ns, 'discover', opts);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`browser did not finish in 10 s:\n${p.out()}`));
    }, 10_000);
    p.child.once('exit', (code) => {
      clearTimeout(timer);
      try {
        assert.equal(code, 0, p.out());
        resolve(JSON.parse(p.out().trim().split('\n').at(-1)!) as DiscoveredServer[]);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

describe('discovery across two network namespaces', { timeout: 30_000 }, () => {
  before(async () => {
    if (skipReason) return;
    process.once('exit', cleanupSync);
    try {
      ip('netns', 'add', NS_A);
      created = true;
      ip('netns', 'add', NS_B);
      ip('link', 'add', IF_A, 'netns', NS_A, 'type', 'veth', 'peer', 'name', IF_B, 'netns', NS_B);
      for (const [ns, dev, addr] of [[NS_A, IF_A, IP_A], [NS_B, IF_B, IP_B]] as const) {
        ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'link', 'set', dev, 'up');
        // No default route in a fresh namespace: without this, a socket that lets the kernel pick
        // the multicast interface gets ENETUNREACH for 224.0.0.251.
        ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev);
      }
      await Promise.all([waitOperUp(NS_A, IF_A), waitOperUp(NS_B, IF_B)]);
    } catch (err) {
      cleanupSync();
      throw err;
    }
  });

  after(async () => {
    await Promise.all([...children].map(stop));
    cleanupSync();
    process.removeListener('exit', cleanupSync);
  });

  it('B finds the server announced in A: address, port, CA pin, cluster id (loopback not advertised)', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const a = await announcer(NS_A, { port: 7443, clusterId: 'cluster-a', caPin: PIN_A, hostname: 'node-a' });
    const found = await browse(NS_B, { timeoutMs: 2000 });
    assert.deepEqual(found, [
      { addr: `https://${IP_A}:7443`, host: 'node-a.local', address: IP_A, addresses: [IP_A], port: 7443, clusterId: 'cluster-a', caPin: PIN_A, instance: 'nexus-node-a-7443' },
    ]);
    await stop(a);
  });

  it('binds to a named interface (no multicast route needed) and filters by cluster id', async (t) => {
    if (skipReason) return t.skip(skipReason);
    for (const [ns, dev] of [[NS_A, IF_A], [NS_B, IF_B]] as const) ip('-n', ns, 'route', 'del', '224.0.0.0/4', 'dev', dev);
    const a = await announcer(NS_A, { port: 8443, clusterId: 'cluster-b', caPin: PIN_B, hostname: 'node-a', interface: IF_A, instanceName: 'rack 1' });
    const t0 = Date.now();
    const [mine, other, limited] = await Promise.all([
      browse(NS_B, { timeoutMs: 2000, interface: IP_B, clusterId: 'cluster-b' }),
      browse(NS_B, { timeoutMs: 2000, interface: IF_B, clusterId: 'someone-else' }),
      browse(NS_B, { timeoutMs: 8000, interface: IF_B, limit: 1 }).then((r) => ({ r, ms: Date.now() - t0 })),
    ]);
    assert.deepEqual(mine.map((s) => [s.addr, s.caPin, s.clusterId, s.instance]), [[`https://${IP_A}:8443`, PIN_B, 'cluster-b', 'rack 1']]);
    assert.deepEqual(other, []);
    assert.equal(limited.r.length, 1);
    assert.ok(limited.ms < 5000, `limit: 1 returns on the first answer, not at the 8 s timeout (${limited.ms} ms)`);
    await stop(a);
  });
});
