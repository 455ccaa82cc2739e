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
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export type NetLink = 'veth' | 'bridge' | 'wire';

/** Packet impairment of the `wire` link, applied to each direction separately. */
export interface WireImpairment {
  /** Probability of dropping a packet, in percent. @default 0 */
  lossPct?: number;
  /** Mean one-way delay added to every packet, ms. @default 0 */
  delayMs?: number;
  /** Standard deviation of that delay (normal distribution, clamped at 0), ms. @default 0 */
  jitterMs?: number;
}

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

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Merged over process.env. */
  env?: NodeJS.ProcessEnv;
  /** SIGKILL and reject after this long. @default 30000 */
  timeoutMs?: number;
}

export interface ReadyProcess {
  child: ChildProcess;
  match: RegExpMatchArray;
  /** stdout and stderr so far, interleaved. */
  output(): string;
}

export interface NetNode {
  /** The label from `names`. */
  readonly name: string;
  /** The namespace (`ip netns` name). */
  readonly ns: string;
  /** The node's interface on the shared link. */
  readonly dev: string;
  /** The node's IPv4 address on the link (without prefix length). */
  readonly addr: string;
  /** Runs `ip -n <ns> ARGS` and throws on failure. */
  ip(...args: string[]): string;
  /** `tc qdisc replace dev <dev> root netem SPEC` (veth and bridge links only). */
  netem(spec: string): void;
  /** Spawns CMD inside the namespace; the process is tracked and killed at cleanup. `ip netns exec`
   * execs in place, so signals to the child reach CMD itself. */
  spawn(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  /** Spawns CMD inside and waits until its stdout/stderr match `ready`. */
  spawnReady(cmd: string, args: string[], ready: RegExp, opts?: RunOptions): Promise<ReadyProcess>;
  /** Runs CMD inside to completion (bounded by `timeoutMs`). */
  run(cmd: string, args: string[], opts?: RunOptions): Promise<CommandResult>;
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

function sh(cmd: string, args: string[], timeoutMs = 10_000): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: !r.error && r.status === 0, stdout: r.stdout ?? '', stderr: (r.error?.message ?? '') + (r.stderr ?? '') };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Why namespaces cannot be used here (not Linux, not root, no `ip netns`), or undefined. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (ip netns)';
  const r = sh('ip', ['netns', 'list'], 5000);
  if (!r.ok) return `ip netns is unavailable: ${r.stderr.trim()}`;
  return undefined;
}

let counter = 0;
const base36pid = process.pid.toString(36);
function nextId(): string {
  return (counter++).toString(36);
}

let netemProbe: string | undefined | null = null;
/**
 * Why `tc qdisc add … netem` does not work here (no tc, or a kernel without sch_netem), or
 * undefined. Probed once per process in a throwaway namespace.
 */
export function netemSkipReason(): string | undefined {
  if (netemProbe !== null) return netemProbe;
  const ns = netnsSkipReason();
  if (ns) return (netemProbe = ns);
  const probe = `nx-${process.pid}-probe${nextId()}`;
  try {
    must('ip', ['netns', 'add', probe]);
    const r = sh('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], 5000);
    if (r.ok) netemProbe = undefined;
    else if (/ENOENT|not found/i.test(r.stderr)) netemProbe = `tc (iproute2) is not installed: ${r.stderr.trim()}`;
    else netemProbe = `the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM / module sch_netem): \`tc qdisc add … netem\` says "${r.stderr.trim()}"`;
  } catch (err) {
    netemProbe = (err as Error).message;
  } finally {
    sh('ip', ['netns', 'del', probe]);
  }
  return netemProbe;
}

/** Why the userspace `wire` link cannot run here (needs python3 and /dev/net/tun), or undefined. */
export function wireSkipReason(): string | undefined {
  const ns = netnsSkipReason();
  if (ns) return ns;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (no TUN support)';
  const r = sh('python3', ['-c', 'import ctypes, fcntl, select, heapq']);
  if (!r.ok) return `python3 is unavailable: ${r.stderr.trim()}`;
  return undefined;
}

/**
 * The `wire` link: creates a TUN device in each of two namespaces (setns) and forwards IP packets
 * between them, dropping each with probability `loss` and delaying it by max(0, N(delay, jitter)),
 * independently per packet and per direction (tc netem's `loss`, `delay D J distribution normal`).
 * Exits when its stdin closes (the test process is gone), which also removes both TUN devices.
 */
const WIRE_PY = String.raw`
import ctypes, fcntl, heapq, json, os, random, select, struct, sys, time
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def tun_in(ns, name):
    fd = os.open('/run/netns/' + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), 'setns ' + ns)
    os.close(fd)
    t = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(t, 0x400454ca, struct.pack('16sH', name.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN|IFF_NO_PI
    os.set_blocking(t, False)
    return t
a = tun_in(cfg['a'][0], cfg['a'][1])
b = tun_in(cfg['b'][0], cfg['b'][1])
loss, delay, jitter = cfg['loss'] / 100.0, cfg['delayMs'] / 1000.0, cfg['jitterMs'] / 1000.0
stats = {'ab': 0, 'ba': 0, 'dropped': 0}
q, seq, report = [], 0, time.monotonic() + 2
print('wire ready', flush=True)
while True:
    now = time.monotonic()
    timeout = max(0.0, min(q[0][0] if q else now + 1, report) - now)
    r, _, _ = select.select([a, b, 0], [], [], timeout)
    now = time.monotonic()
    for fd in r:
        if fd == 0:
            if not os.read(0, 4096):
                sys.exit(0)
            continue
        out = b if fd == a else a
        while True:
            try:
                pkt = os.read(fd, 65535)
            except BlockingIOError:
                break
            if not pkt:
                break
            stats['ab' if fd == a else 'ba'] += 1
            if loss > 0 and random.random() < loss:
                stats['dropped'] += 1
                continue
            d = max(0.0, random.gauss(delay, jitter)) if jitter > 0 else delay
            heapq.heappush(q, (now + d, seq, out, pkt))
            seq += 1
    now = time.monotonic()
    while q and q[0][0] <= now:
        _, _, out, pkt = heapq.heappop(q)
        try:
            os.write(out, pkt)
        except OSError:
            pass
    if now >= report:
        report = now + 2
        print(json.dumps(stats), flush=True)
`;

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

function collect(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
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
  let wire: ChildProcess | undefined;
  let lastWireStats: { ab: number; ba: number; dropped: number } | undefined;
  let cleaned = false;

  const cleanupSync = (): void => {
    if (cleaned) return;
    cleaned = true;
    process.removeListener('exit', cleanupSync);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSignal);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.clear();
    if (wire && wire.exitCode === null && wire.signalCode === null) wire.kill('SIGKILL');
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
      const w = opts.wire ?? {};
      const cfg = { a: [nsOf[0], devs[0]], b: [nsOf[1], devs[1]], loss: w.lossPct ?? 0, delayMs: w.delayMs ?? 0, jitterMs: w.jitterMs ?? 0 };
      wire = spawn('python3', ['-u', '-c', WIRE_PY, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out = collect(wire);
      wire.stdout!.on('data', () => {
        const line = out().trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
        if (line) lastWireStats = JSON.parse(line) as typeof lastWireStats;
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`wire not ready in 5 s:\n${out()}`)), 5000);
        wire!.stdout!.on('data', () => {
          if (out().includes('wire ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        wire!.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`wire exited (${String(code)}):\n${out()}`));
        });
      });
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
    wireStats: () => lastWireStats,
    async cleanup(graceMs = 3000) {
      if (cleaned) return;
      await Promise.all([...children].map((c) => stopProcess(c, graceMs)));
      cleanupSync();
    },
    cleanupSync,
  };
}

function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function makeNode(name: string, ns: string, dev: string, addr: string, link: NetLink, children: Set<ChildProcess>): NetNode {
  const spawnIn = (cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  return {
    name,
    ns,
    dev,
    addr,
    ip: (...args) => must('ip', ['-n', ns, ...args]),
    netem(spec) {
      if (link === 'wire') throw new Error('netem() needs a veth or bridge link; the wire link takes its impairment at creation');
      must('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'netem', ...spec.trim().split(/\s+/)]);
    },
    spawn: (cmd, args, opts) => spawnIn(cmd, args, opts?.env),
    spawnReady(cmd, args, ready, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      return new Promise((resolve, reject) => {
        const child = spawnIn(cmd, args, opts.env);
        child.stdin!.end();
        const output = collect(child);
        let done = false;
        const finish = (err?: Error, m?: RegExpMatchArray) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (err) {
            child.kill('SIGKILL');
            reject(err);
          } else resolve({ child, match: m!, output });
        };
        const timer = setTimeout(() => finish(new Error(`[${name}] ${cmd} ${args.join(' ')} not ready within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
        const check = () => {
          const m = output().match(ready);
          if (m) finish(undefined, m);
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('exit', (code, sig) => finish(new Error(`[${name}] ${cmd} ${args.join(' ')} exited (${String(code ?? sig)}) before ready:\n${output()}`)));
      });
    },
    run(cmd, args, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      return new Promise((resolve, reject) => {
        const child = spawnIn(cmd, args, opts.env);
        child.stdin!.end();
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`[${name}] ${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
        }, timeoutMs);
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
      });
    },
  };
}
