/**
 * The `wire` link of the network-namespace test helpers (`netns.ts`): a TUN device in each of two
 * namespaces, joined by a small userspace process (python3) that drops and delays every IP packet
 * the way `tc netem loss P% delay D J distribution normal` does, in both directions. For kernels
 * built without `sch_netem`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { collect, netnsSkipReason, sh } from './netns-host.js';

/** Packet impairment of the `wire` link, applied to each direction separately. */
export interface WireImpairment {
  /** Probability of dropping a packet, in percent. @default 0 */
  lossPct?: number;
  /** Mean one-way delay added to every packet, ms. @default 0 */
  delayMs?: number;
  /** Standard deviation of that delay (normal distribution, clamped at 0), ms. @default 0 */
  jitterMs?: number;
}

/** Counters of the `wire` link: packets each way, and dropped. */
export interface WireStats {
  ab: number;
  ba: number;
  dropped: number;
}

/** A running `wire` link. */
export interface Wire {
  /** The forwarding process; killing it removes both TUN devices. */
  readonly child: ChildProcess;
  /** Resolves once it forwards; rejects when it exits first or is not ready in 5 s. */
  readonly ready: Promise<void>;
  /** The counters as last reported (every 2 s). */
  stats(): WireStats | undefined;
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

/** Starts the wire between TUN device `a[1]` in namespace `a[0]` and `b[1]` in `b[0]`. */
export function startWire(a: [ns: string, dev: string], b: [ns: string, dev: string], w: WireImpairment = {}): Wire {
  const cfg = { a, b, loss: w.lossPct ?? 0, delayMs: w.delayMs ?? 0, jitterMs: w.jitterMs ?? 0 };
  const wire = spawn('python3', ['-u', '-c', WIRE_PY, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = collect(wire);
  let lastWireStats: WireStats | undefined;
  wire.stdout!.on('data', () => {
    const line = out().trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
    if (line) lastWireStats = JSON.parse(line) as typeof lastWireStats;
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wire not ready in 5 s:\n${out()}`)), 5000);
    wire.stdout!.on('data', () => {
      if (out().includes('wire ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    wire.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wire exited (${String(code)}):\n${out()}`));
    });
  });
  return { child: wire, ready, stats: () => lastWireStats };
}
