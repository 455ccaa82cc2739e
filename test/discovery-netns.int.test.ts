// LAN discovery across hosts: two network namespaces joined by a veth pair stand in for two
// machines on one link. The announcer runs in A, the browser in B, each a real process
// (test/fixtures/discovery-peer.ts) on the real mDNS port 5353 — which is private to each
// namespace, so this never touches the host's network. Needs root and `ip netns`; skipped otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DiscoveredServer } from '../src/cluster/discovery/index.js';
import { createNetLab, netnsSkipReason, type NetLab, type NetNode } from '../src/testing/netns.js';

const PEER = fileURLToPath(new URL('./fixtures/discovery-peer.js', import.meta.url));
const PIN_A = 'a1'.repeat(32);
const PIN_B = 'b2'.repeat(32);

const skipReason = netnsSkipReason();
// Namespaces, veth pair, addresses, multicast routes and cleanup (even on a crash): src/testing/netns.ts.
let lab: NetLab;
let A: NetNode;
let B: NetNode;

/** Starts the peer in a namespace. */
function peer(node: NetNode, mode: 'announce' | 'discover', opts: object): { child: ChildProcess; out: () => string } {
  // `ip netns exec` execs node in place, so killing the child kills node.
  const child = node.spawn(process.execPath, [PEER, mode, JSON.stringify(opts)]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

/** Starts an announcer on `node` and waits for its first announcement. */
async function announcer(node: NetNode, opts: object): Promise<ChildProcess> {
  const p = peer(node, 'announce', opts);
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

/** Runs a browser on `node` to completion and returns what it found. */
function browse(node: NetNode, opts: object): Promise<DiscoveredServer[]> {
  const p = peer(node, 'discover', opts);
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
    lab = await createNetLab({ names: ['a', 'b'], link: 'veth', subnet: '10.77.0' });
    [A, B] = lab.nodes as [NetNode, NetNode];
  });

  after(async () => {
    await lab?.cleanup();
  });

  it('B finds the server announced in A: address, port, CA pin, cluster id (loopback not advertised)', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const a = await announcer(A, { port: 7443, clusterId: 'cluster-a', caPin: PIN_A, hostname: 'node-a' });
    const found = await browse(B, { timeoutMs: 2000 });
    assert.deepEqual(found, [
      { addr: `https://${A.addr}:7443`, host: 'node-a.local', address: A.addr, addresses: [A.addr], port: 7443, clusterId: 'cluster-a', caPin: PIN_A, instance: 'nexus-node-a-7443' },
    ]);
    await stop(a);
  });

  it('binds to a named interface (no multicast route needed) and filters by cluster id', async (t) => {
    if (skipReason) return t.skip(skipReason);
    for (const n of [A, B]) n.ip('route', 'del', '224.0.0.0/4', 'dev', n.dev);
    const a = await announcer(A, { port: 8443, clusterId: 'cluster-b', caPin: PIN_B, hostname: 'node-a', interface: A.dev, instanceName: 'rack 1' });
    const t0 = Date.now();
    const [mine, other, limited] = await Promise.all([
      browse(B, { timeoutMs: 2000, interface: B.addr, clusterId: 'cluster-b' }),
      browse(B, { timeoutMs: 2000, interface: B.dev, clusterId: 'someone-else' }),
      browse(B, { timeoutMs: 8000, interface: B.dev, limit: 1 }).then((r) => ({ r, ms: Date.now() - t0 })),
    ]);
    assert.deepEqual(mine.map((s) => [s.addr, s.caPin, s.clusterId, s.instance]), [[`https://${A.addr}:8443`, PIN_B, 'cluster-b', 'rack 1']]);
    assert.deepEqual(other, []);
    assert.equal(limited.r.length, 1);
    assert.ok(limited.ms < 5000, `limit: 1 returns on the first answer, not at the 8 s timeout (${limited.ms} ms)`);
    await stop(a);
  });
});
