/**
 * Network namespaces for tests: several "hosts" on one link, each a Linux network namespace, with
 * real processes inside. Linux and root only; `netnsSkipReason()` says why not otherwise.
 *
 * ```ts
 * const lab = await createNetLab({ names: ['srv', 'agt'] });        // two namespaces, one veth pair
 * try {
 *   const [a, b] = lab.nodes;
 *   a.netem('delay 200ms 50ms loss 1%');                             // tc netem on a's side
 *   const srv = await a.spawnReady(process.execPath, [NEXUS_BIN, 'server', '--host', a.addr], /Join a device/);
 *   const r = await b.run(process.execPath, [NEXUS_BIN, 'agent', '--join', …]);
 * } finally {
 *   await lab.cleanup();
 * }
 * ```
 *
 * Links:
 * - `veth` (two namespaces): one veth pair, each end in its namespace.
 * - `bridge` (any number): a bridge in a namespace of its own; each node has a veth whose other end
 *   is a port of that bridge (one L2 segment, multicast floods to all).
 * - `wire` (two namespaces): a TUN device in each, joined by a small userspace process that drops
 *   and delays every IP packet the way `tc netem loss P% delay D J distribution normal` does, in
 *   both directions (per-packet normal delay, so packets can overtake each other like netem's).
 *   For kernels built without `sch_netem` (`netemSkipReason()`); needs python3 and /dev/net/tun.
 *
 * Cleanup is guaranteed three ways: `cleanup()` (call it from `after`), a synchronous pass on
 * process `exit` / SIGINT / SIGTERM / SIGHUP, and a detached watchdog shell that deletes the
 * namespaces (and kills what still runs in them) if the test process dies by SIGKILL. Names carry
 * the pid and a per-process counter, so parallel runs never collide; addresses live only inside
 * the namespaces, so the default subnet never clashes with the host's.
 *
 * This file makes the lab (namespaces, links, cleanup); a node and the processes in it are in
 * `netns-node.ts`, the `wire` link in `netns-wire.ts`, and `ip`/`tc` and the skip probes in
 * `netns-host.ts`. Everything a test needs is exported from here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { base36pid, must, netnsSkipReason, nextId, sh } from './netns-host.js';
import { makeNode, stopProcess, type NetNode } from './netns-node.js';
import { startWire, wireSkipReason, type Wire, type WireImpairment } from './netns-wire.js';

export { netemSkipReason, netnsSkipReason } from './netns-host.js';
export type { CommandResult, NetNode, ReadyProcess, RunOptions } from './netns-node.js';
export { wireSkipReason, type WireImpairment, type WireStats } from './netns-wire.js';

export type NetLink = 'veth' | 'bridge' | 'wire';

export interface NetLabOptions {
  /** Namespace labels (short, [a-z0-9]); their count is the number of nodes. @default ['a', 'b'] */
  names?: string[];
  /** How the nodes are joined. @default 'veth' for two nodes, 'bridge' otherwise */
  link?: NetLink;
  /** The first three octets of the /24 the nodes share; node i gets `.i+1`. @default '10.77.0' */
  subnet?: string;
  /** Add `224.0.0.0/4 dev <if>` in each node, so multicast sockets that let the kernel pick the
   * interface work in a namespace without a default route. @default true */
  multicastRoute?: boolean;
  /** Impairment for the `wire` link. */
  wire?: WireImpairment;
}

export interface NetLab {
  readonly nodes: NetNode[];
  readonly link: NetLink;
  /** The bridge's namespace (bridge link only). */
  readonly bridgeNs?: string;
  /** Counters of the `wire` link (packets each way and dropped), as last reported (every 2 s). */
  wireStats(): { ab: number; ba: number; dropped: number } | undefined;
  /** SIGTERM to every tracked process (SIGKILL after `graceMs`), then deletes everything. Idempotent. */
  cleanup(graceMs?: number): Promise<void>;
  /** SIGKILL and delete, synchronously (what the exit hook runs). Idempotent. */
  cleanupSync(): void;
}

/** Waits until `dev` in `ns` is up with carrier (LOWER_UP): libuv's os.networkInterfaces() hides
 * interfaces that are not IFF_RUNNING, and a veth gets there a moment after both ends are up. */
async function waitLinkUp(ns: string, dev: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev], 5000);
    const flags = r.ok ? ((JSON.parse(r.stdout) as { flags?: string[] }[])[0]?.flags ?? []) : [];
    if (flags.includes('UP') && flags.includes('LOWER_UP')) return;
    if (Date.now() > deadline) throw new Error(`${dev} in ${ns} has no carrier (flags ${flags.join(',')})`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Creates the namespaces and the link. On any failure, removes what it made and throws. */
export async function createNetLab(opts: NetLabOptions = {}): Promise<NetLab> {
  const skip = netnsSkipReason();
  if (skip) throw new Error(skip);
  const names = opts.names ?? ['a', 'b'];
  if (names.length < 1 || names.some((n) => !/^[a-z0-9]{1,8}$/.test(n))) throw new Error(`bad node names ${JSON.stringify(names)}`);
  const link: NetLink = opts.link ?? (names.length === 2 ? 'veth' : 'bridge');
  if ((link === 'veth' || link === 'wire') && names.length !== 2) throw new Error(`a ${link} link joins exactly two namespaces`);
  if (link === 'wire' && wireSkipReason()) throw new Error(wireSkipReason());
  const subnet = opts.subnet ?? '10.77.0';
  const lab = nextId();
  // Interface names must fit in 15 bytes: "nx" + pid (base 36, ≤ 5) + lab + role + index.
  const ifBase = `nx${base36pid}${lab}`;
  const nsBase = `nx-${process.pid}-${lab}`;
  const namespaces: string[] = [];
  const children = new Set<ChildProcess>();
  let watchdog: ChildProcess | undefined;
  let wire: Wire | undefined;
  let cleaned = false;

  const cleanupSync = (): void => {
    if (cleaned) return;
    cleaned = true;
    process.removeListener('exit', cleanupSync);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSignal);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.clear();
    if (wire && wire.child.exitCode === null && wire.child.signalCode === null) wire.child.kill('SIGKILL');
    // Anything else still running inside (a grandchild) was started from this lab.
    for (const ns of namespaces) {
      for (const pid of sh('ip', ['netns', 'pids', ns], 5000).stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    // Deleting a namespace removes its ends of the veth pairs, and a pair dies with either end.
    for (const ns of namespaces) sh('ip', ['netns', 'del', ns], 5000);
    if (watchdog && watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL');
  };
  function onSignal(sig: NodeJS.Signals): void {
    cleanupSync();
    // Our listener is gone now: re-raise so the default action (or the next listener) runs.
    process.kill(process.pid, sig);
  }

  const addNs = (ns: string) => {
    must('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
  };

  process.once('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, onSignal);

  const nodes: NetNode[] = [];
  const bridgeNs = link === 'bridge' ? `${nsBase}-br` : undefined;
  try {
    const nsOf = names.map((n) => `${nsBase}-${n}`);
    for (const ns of nsOf) addNs(ns);
    if (bridgeNs) addNs(bridgeNs);
    // The watchdog outlives a SIGKILLed test process (own process group, no stdio) and cleans up.
    watchdog = spawn('sh', ['-c', 'p=$1; shift; while kill -0 "$p" 2>/dev/null; do sleep 1; done; for ns in "$@"; do for q in $(ip netns pids "$ns"); do kill -9 "$q"; done; ip netns del "$ns"; done', 'nexus-netns-watchdog', String(process.pid), ...namespaces], { detached: true, stdio: 'ignore' });
    watchdog.unref();

    const devs = names.map((_, i) => `${ifBase}n${i}`);
    if (link === 'veth') {
      must('ip', ['link', 'add', devs[0]!, 'netns', nsOf[0]!, 'type', 'veth', 'peer', 'name', devs[1]!, 'netns', nsOf[1]!]);
    } else if (link === 'bridge') {
      const br = `${ifBase}br`;
      must('ip', ['-n', bridgeNs!, 'link', 'add', 'name', br, 'type', 'bridge', 'mcast_snooping', '0']);
      must('ip', ['-n', bridgeNs!, 'link', 'set', br, 'up']);
      for (let i = 0; i < names.length; i++) {
        const port = `${ifBase}p${i}`;
        must('ip', ['link', 'add', devs[i]!, 'netns', nsOf[i]!, 'type', 'veth', 'peer', 'name', port, 'netns', bridgeNs!]);
        must('ip', ['-n', bridgeNs!, 'link', 'set', port, 'master', br]);
        must('ip', ['-n', bridgeNs!, 'link', 'set', port, 'up']);
      }
    } else {
      wire = startWire([nsOf[0]!, devs[0]!], [nsOf[1]!, devs[1]!], opts.wire);
      await wire.ready;
    }
    for (let i = 0; i < names.length; i++) {
      const ns = nsOf[i]!;
      const dev = devs[i]!;
      const addr = `${subnet}.${i + 1}`;
      must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      must('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      if (link === 'wire') must('ip', ['-n', ns, 'link', 'set', dev, 'multicast', 'on']);
      must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      // A fresh namespace has no default route: without this, a socket that lets the kernel pick
      // the multicast interface gets ENETUNREACH for 224.0.0.251.
      if (opts.multicastRoute !== false) must('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev]);
      nodes.push(makeNode(names[i]!, ns, dev, addr, link, children));
    }
    await Promise.all(nodes.map((n) => waitLinkUp(n.ns, n.dev)));
  } catch (err) {
    cleanupSync();
    throw err;
  }

  return {
    nodes,
    link,
    ...(bridgeNs ? { bridgeNs } : {}),
    wireStats: () => wire?.stats(),
    async cleanup(graceMs = 3000) {
      if (cleaned) return;
      await Promise.all([...children].map((c) => stopProcess(c, graceMs)));
      cleanupSync();
    },
    cleanupSync,
  };
}
