/**
 * Devices at scale: one real `nexus server` (TLS, SQLite, fresh data dir, its own process) driven
 * by the device simulator (src/sim/, this process): N simulated agents join through the real flow
 * (pinned CA, POST /v1/join with a join token, a credential each) and heartbeat at the server's
 * default interval as agents do: one heartbeat stream per device, each on its own TLS connection
 * (docs/adr/011). `--mode request` sends one POST per beat over `--sockets` shared keep-alive
 * connections instead (what agents fall back to against a server without streams).
 *
 *   npm run bench -- devices [--devices 1000,10000] [--mode stream|request] [--seconds 30] [--sockets 256]
 *                            [--join-concurrency 64] [--join-rate 300] [--kill-pct 1] [--warmup 15]
 *                            [--floor-seconds 10] [--max-seconds 280] [--server-args="--heartbeat-ms 4000 …"]
 *                            [--server-cpu-prof DIR] [--keep]
 *
 * Per size it prints: joins/s; heartbeats/s achieved vs expected; heartbeat latency p50/p99/max
 * (from due to answered, so waiting for one of the shared sockets counts); the server's CPU
 * (/proc/PID/stat utime+stime over the window, % of one core) and RSS (VmRSS, and its peak);
 * the simulator's own CPU (it shares the 2 cores with the server); detection time of killed
 * devices (1 % stop heartbeating; seconds until GET /v1/devices/:id shows them `down`); and the
 * time of one full `GET /v1/devices`. CPU is also shown per heartbeat (µs of CPU time), beside
 * the floor measured right after at the same size and rate: a bare `node:https` server with the
 * same certificate that parses each heartbeat and answers it (src/sim/floor-server.ts).
 *
 * Goal (issue "Devices"): 10,000 devices on a 2-core machine with heartbeat p99 < 200 ms.
 * Anchor: k3s sizes a 2-core / 4 GB server for up to 350 agents (docs.k3s.io, "Requirements",
 * CPU and memory table for servers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpuPercent, DeviceFleet, HttpPool, percentiles, sampleProcess, startFloorServer, systemPercent, type Detection, type JoinResult, type ProcSample, type WindowStats } from '../src/sim/index.js';
import { NEXUS_BIN } from '../src/testing/cli.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000,10000' },
    seconds: { type: 'string', default: '30' },
    sockets: { type: 'string', default: '256' },
    mode: { type: 'string', default: 'stream' },
    'join-concurrency': { type: 'string', default: '64' },
    'join-rate': { type: 'string', default: '300' },
    'kill-pct': { type: 'string', default: '1' },
    warmup: { type: 'string', default: '15' },
    'floor-seconds': { type: 'string', default: '10' },
    'max-seconds': { type: 'string', default: '280' },
    'server-args': { type: 'string', default: '' },
    'server-cpu-prof': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SIZES = args.devices.split(',').map((s) => Math.max(1, Math.floor(Number(s.replace(/_/g, '')))));
const SECONDS = Math.max(1, Number(args.seconds));
const SOCKETS = Math.max(1, Number(args.sockets));
if (args.mode !== 'stream' && args.mode !== 'request') throw new Error(`--mode must be stream or request, not ${args.mode}`);
const MODE = args.mode;
const JOIN_CONCURRENCY = Math.max(1, Number(args['join-concurrency']));
/** Devices arrive at this many joins per second (0: as fast as the server takes them). */
const JOIN_RATE = Math.max(0, Number(args['join-rate']));
const KILL_PCT = Math.max(0, Number(args['kill-pct']));
const WARMUP = Math.max(0, Number(args.warmup));
const FLOOR_SECONDS = Math.max(0, Number(args['floor-seconds']));
const SERVER_ARGS = args['server-args'].split(/\s+/).filter(Boolean);
const DEADLINE = Date.now() + Math.max(30, Number(args['max-seconds'])) * 1000;
const GOAL = { devices: 10_000, p99Ms: 200 };
const K3S_AGENTS_PER_2_CORES = 350;
/** The server's restart grace (ADR 005): nobody is marked unreachable before it passes. */
const RESTART_GRACE_MS = 10_000;

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const ms = (x: number) => (x < 10 ? x.toFixed(1) : x.toFixed(0)) + ' ms';
const mb = (b: number) => `${fmt(b / 1024 / 1024)} MB`;
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

interface Server {
  child: ChildProcess;
  pid: number;
  url: string;
  pin: string;
  adminToken: string;
  readyAt: number;
  output: () => string;
  stop(): Promise<void>;
}

async function startServer(dataDir: string, profDir: string | undefined): Promise<Server> {
  const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, NEXUS_BIN, 'server', '--data-dir', dataDir, '--port', '0', '--log-level', 'warn', ...SERVER_ARGS], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NEXUS_LOG_LEVEL: 'warn' },
  });
  let out = '';
  const onData = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const m = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready in 30 s:\n${out}`)), 30_000);
    const check = () => {
      const hit = out.match(/API:\s+(https:\/\/\S+)[\s\S]*?pin ([0-9a-f]{64})[\s\S]*?Join a device/);
      if (hit) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(hit);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    child,
    pid: child.pid!,
    url: m[1]!,
    pin: m[2]!,
    adminToken,
    readyAt: Date.now(),
    output: () => out,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    }),
  };
}

/** One measurement window: heartbeats and the CPU/RSS of the server and of this process. */
interface Window {
  hb: WindowStats;
  serverCpu: number;
  serverKernel: number;
  serverRss: number;
  serverPeakRss: number;
  simCpu: number;
  simKernel: number;
  /** p99 delay of this process's event loop (ms): high means the simulator itself is late. */
  simLagP99: number;
}

async function measure(fleet: DeviceFleet, pid: number, seconds: number): Promise<Window> {
  fleet.resetWindow();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const s0: ProcSample = sampleProcess(pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let peak = s0.rssBytes;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await sleep(Math.min(1000, end - Date.now()));
    peak = Math.max(peak, sampleProcess(pid).rssBytes);
  }
  const s1 = sampleProcess(pid);
  const c1 = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  lag.disable();
  return {
    hb: fleet.window(),
    serverCpu: cpuPercent(s0, s1),
    serverKernel: systemPercent(s0, s1),
    serverRss: s1.rssBytes,
    serverPeakRss: peak,
    simCpu: ((c1.user + c1.system) / 1000 / wall) * 100,
    simKernel: (c1.system / 1000 / wall) * 100,
    simLagP99: lag.percentile(99) / 1e6,
  };
}

/** µs of CPU per heartbeat answered. */
const perBeat = (cpuPct: number, hb: WindowStats) => (hb.perSecond > 0 ? (cpuPct * 10_000) / hb.perSecond : NaN);

interface Result extends Window {
  /** Devices asked for (--devices); `devices` is how many joined in time. */
  requested: number;
  devices: number;
  join: JoinResult;
  killed: number;
  detection: Detection[];
  list?: { ms: number; items: number; bytes: number };
  connections: number;
  floor?: Window;
}

async function runSize(n: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-devices-'));
  const profDir = args['server-cpu-prof'] ? join(args['server-cpu-prof'], `n${n}`) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const server = await startServer(dir, profDir);
  let fleet: DeviceFleet | undefined;
  let result: Result;
  try {
    // A join token, minted by the admin like `nexus tokens create --role agent`.
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const admin = new HttpPool({ url: server.url, ca, sockets: 1 });
    const { token } = await admin.json<{ token: string }>('POST', '/v1/tokens', server.adminToken, { role: 'agent', name: 'bench devices' });
    admin.close();
    // The simulator checks the pin itself (fetches the CA unverified), as agents do.
    fleet = await DeviceFleet.connect({ server: server.url, joinToken: token, sockets: SOCKETS, joinConcurrency: JOIN_CONCURRENCY, ...(JOIN_RATE > 0 ? { joinRate: JOIN_RATE } : {}), mode: MODE });
    // Devices heartbeat as soon as they have joined, like real agents. Joining is bounded in time.
    fleet.start();
    // What must still fit after joining: warm-up, the window, detection (≤ 25 s), the floor, stops.
    const joined = await fleet.join(n, Math.min(DEADLINE - (WARMUP + SECONDS + FLOOR_SECONDS + 3 + 45) * 1000, Date.now() + 150_000));
    if (joined.joined === 0) throw new Error(`no device joined: ${JSON.stringify(joined.errors)}`);
    await sleep(WARMUP * 1000);
    const w = await measure(fleet, server.pid, SECONDS);
    const connections = fleet.connections;

    // Detection: kill 1 % (at least one), once the server's restart grace is over.
    const graceLeft = server.readyAt + RESTART_GRACE_MS + 1000 - Date.now();
    if (graceLeft > 0) await sleep(graceLeft);
    const killed = KILL_PCT > 0 ? Math.max(1, Math.round((joined.joined * KILL_PCT) / 100)) : 0;
    const victims = fleet.kill(killed);
    // Down takes 4 intervals (stretched ones too, with --server-args); give it 6 and 5 s more.
    const detectMs = Math.min(25_000, Math.max(10_000, 6 * fleet.intervalMs + 5000));
    const detection = killed ? await fleet.watchDown(victims, server.adminToken, 100, detectMs) : [];

    let list: Result['list'];
    try {
      list = await fleet.timeList(server.adminToken);
    } catch (err) {
      console.log(`  (GET /v1/devices failed: ${(err as Error).message})`);
    }
    result = { requested: n, devices: joined.joined, join: joined, ...w, killed, detection, ...(list ? { list } : {}), connections };
  } finally {
    fleet?.stop();
    await server.stop();
  }
  try {
    // The floor: the same client, devices and rate against a bare node:https server.
    if (FLOOR_SECONDS > 0) {
      const interval = result.hb.intervalMs;
      const floor = await startFloorServer(join(dir, 'server.crt'), join(dir, 'server.key'), interval);
      const synthetic = DeviceFleet.synthetic({ server: floor.url, ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), count: result.devices, sockets: SOCKETS, heartbeatMs: interval, mode: MODE });
      try {
        // Streams open at the pace the devices joined, not all within one interval.
        synthetic.start(result.join.seconds * 1000);
        await sleep(result.join.seconds * 1000 + WARMUP * 1000);
        result.floor = await measure(synthetic, floor.pid, FLOOR_SECONDS);
      } finally {
        synthetic.stop();
        await floor.stop();
      }
    }
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    else console.log(`  (data dir kept: ${dir})`);
  }
  return result;
}

function report(r: Result): void {
  const { hb, join } = r;
  const errs = (e: Record<string, number>) => Object.entries(e).map(([k, v]) => `${k}×${v}`).join(', ') || 'none';
  const down = percentiles(r.detection.filter((d) => d.downS !== undefined).map((d) => d.downS!));
  const unreach = percentiles(r.detection.filter((d) => d.unreachableS !== undefined).map((d) => d.unreachableS!));
  const missed = r.detection.filter((d) => d.downS === undefined).length;
  const serverUs = perBeat(r.serverCpu, hb);
  const simUs = perBeat(r.simCpu, hb);
  console.log(MODE === 'stream'
    ? `\n== ${fmt(r.devices)} devices (heartbeat streams: ${fmt(r.connections)} TLS connections open, one per device as agents hold) ==`
    : `\n== ${fmt(r.devices)} devices (requests: ${r.connections} shared keep-alive sockets; real agents would hold ${fmt(r.devices)}) ==`);
  console.log(`  joins          ${fmt(join.joined)} in ${join.seconds.toFixed(1)} s = ${fmt(join.perSecond)} joins/s (${JOIN_RATE > 0 ? `paced at ${fmt(JOIN_RATE)}/s, ` : ''}${JOIN_CONCURRENCY} in flight, devices heartbeat as they join)${join.failed ? `, ${join.failed} failed: ${errs(join.errors)}` : ''}`);
  console.log(`  heartbeats/s   ${fmt(hb.perSecond)} achieved vs ${fmt(hb.expectedPerSecond)} expected (${((hb.perSecond / hb.expectedPerSecond) * 100).toFixed(1)} %; ${fmt(hb.alive)} devices at ${hb.intervalMs} ms, sent at 85–100 %); failed ${hb.failed} (${errs(hb.errors)})`);
  if (hb.unanswered) console.log(`                 ${fmt(hb.ok - hb.unanswered)} of them asked for an answer (1 in 5, as agents do) and were timed; the rest were written and not answered`);
  console.log(`  latency        p50 ${ms(hb.latency.p50)}  p90 ${ms(hb.latency.p90)}  p99 ${ms(hb.latency.p99)}  max ${ms(hb.latency.max)}   (on the wire, without waiting for a shared socket: p99 ${ms(hb.wire.p99)})`);
  console.log(`  server         CPU ${r.serverCpu.toFixed(0)} % of one core (kernel ${r.serverKernel.toFixed(0)} %) over ${hb.seconds.toFixed(0)} s = ${serverUs.toFixed(0)} µs per heartbeat; RSS ${mb(r.serverRss)} (peak ${mb(r.serverPeakRss)})`);
  const simBusy = r.simCpu + r.serverCpu > 150 || r.simLagP99 > 50;
  console.log(`  simulator      CPU ${r.simCpu.toFixed(0)} % of one core (kernel ${r.simKernel.toFixed(0)} %) = ${simUs.toFixed(0)} µs per heartbeat; its event loop p99 lag ${ms(r.simLagP99)}` +
    (simBusy ? '  ← the simulator shares the 2 cores with the server and is part of the bottleneck (latency includes its own lag)' : ''));
  if (r.killed && down.count === 0) {
    console.log(`  detection      ${r.killed} killed: none seen down in time (the server did not answer the reads, or did not mark them)`);
  } else if (r.killed) {
    console.log(`  detection      ${r.killed} killed: down after median ${down.p50.toFixed(2)} s, max ${down.max.toFixed(2)} s (unreachable median ${unreach.p50.toFixed(2)} s)${missed ? `; ${missed} not seen down in time` : ''}   [ADR 005: ≤ 5 s at the default 1 s interval]`);
  }
  if (r.list) console.log(`  list           GET /v1/devices: ${fmt(r.list.items)} devices, ${mb(r.list.bytes)} in ${ms(r.list.ms)}`);
  if (r.floor) {
    const f = r.floor;
    const floorUs = perBeat(f.serverCpu, f.hb);
    console.log(`  floor          bare node:https, same certificate, client and devices: ${fmt(f.hb.perSecond)} hb/s, p99 ${ms(f.hb.latency.p99)}; server CPU ${f.serverCpu.toFixed(0)} % (kernel ${f.serverKernel.toFixed(0)} %) = ${floorUs.toFixed(0)} µs per heartbeat, RSS ${mb(f.serverRss)}; simulator ${perBeat(f.simCpu, f.hb).toFixed(0)} µs`);
    console.log(`                 → NEXUS costs ${(serverUs / floorUs).toFixed(1)}× the floor per heartbeat (+${(serverUs - floorUs).toFixed(0)} µs: ${MODE === 'stream' ? 'validation, the heartbeat table, credential re-checks' : 'fastify, auth, validation, handler'})`);
  }
  // The server is one event loop: its heartbeats/s cannot pass one core's worth of its cost.
  const r100 = (x: number) => fmt(Math.round(x / 100) * 100);
  console.log(`  ceiling        one event loop at ${serverUs.toFixed(0)} µs per heartbeat ≈ ${r100(1e6 / serverUs)} heartbeats/s ≈ ${r100((1e6 / serverUs) * 0.925)} devices at 1 s, with a whole core to itself (at this size's cost per heartbeat, fixed costs such as the health sweep included: they weigh more at small sizes)`);
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`devices: nexus server (TLS, SQLite, ${SERVER_ARGS.length ? SERVER_ARGS.join(' ') : 'defaults: heartbeat 1 s, down 4 s'}) ↔ simulator in this process`);
  console.log(`machine: ${cpus().length} cores (shared: load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at start), Node ${process.version}`);
  console.log(`goal:    ${fmt(GOAL.devices)} devices, heartbeat p99 < ${GOAL.p99Ms} ms on 2 cores   |   k3s anchor: a 2-core server is sized for ${K3S_AGENTS_PER_2_CORES} agents`);
  const results: Result[] = [];
  for (const n of SIZES) {
    // A rough budget: joins at ≥ 300/s, warm-up, the window, detection, start/stop.
    const need = (n / (JOIN_RATE || 300) + WARMUP + SECONDS + 25) * 1000;
    if (Date.now() + need > DEADLINE) {
      console.log(`\n== ${fmt(n)} devices: skipped (would pass --max-seconds ${args['max-seconds']}) ==`);
      continue;
    }
    const r = await runSize(n);
    report(r);
    results.push(r);
  }
  console.log(`\nsummary (load average now ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
  console.log('  devices   joins/s   hb/s (expected)     p50       p99       max     server CPU  µs/hb  (floor)   RSS       sim CPU   down median/max');
  for (const r of results) {
    const down = percentiles(r.detection.filter((d) => d.downS !== undefined).map((d) => d.downS!));
    const floorUs = r.floor ? perBeat(r.floor.serverCpu, r.floor.hb).toFixed(0) : '-';
    console.log(`  ${fmt(r.devices).padStart(7)}   ${fmt(r.join.perSecond).padStart(7)}   ${`${fmt(r.hb.perSecond)} (${fmt(r.hb.expectedPerSecond)})`.padEnd(17)}  ${ms(r.hb.latency.p50).padStart(8)}  ${ms(r.hb.latency.p99).padStart(8)}  ${ms(r.hb.latency.max).padStart(8)}   ${`${r.serverCpu.toFixed(0)} %`.padStart(6)}  ${perBeat(r.serverCpu, r.hb).toFixed(0).padStart(6)}  ${`(${floorUs})`.padStart(7)}  ${mb(r.serverRss).padStart(7)}   ${`${r.simCpu.toFixed(0)} %`.padStart(6)}    ${down.count ? `${down.p50.toFixed(2)} / ${down.max.toFixed(2)} s` : '-'}`);
  }
  const big = results.find((r) => r.requested >= GOAL.devices);
  if (big && SERVER_ARGS.length) {
    console.log(`goal:    not judged: the server ran with ${SERVER_ARGS.join(' ')}, not the defaults (${fmt(big.devices)} devices at ${big.hb.intervalMs} ms: p99 ${ms(big.hb.latency.p99)})` +
      `   |   k3s anchor: ${K3S_AGENTS_PER_2_CORES} agents per 2-core server`);
  } else if (big) {
    const met = big.devices >= GOAL.devices && big.hb.latency.p99 < GOAL.p99Ms && big.hb.perSecond >= 0.95 * big.hb.expectedPerSecond && big.hb.failed === 0;
    const why = big.devices < GOAL.devices ? `only ${fmt(big.devices)} of ${fmt(big.requested)} joined in time; ` : '';
    console.log(`goal:    ${fmt(GOAL.devices)} devices at the default interval, p99 < ${GOAL.p99Ms} ms → ${met ? 'MET' : 'NOT MET'} (${why}${fmt(big.devices)} devices at ${big.hb.intervalMs} ms: p99 ${ms(big.hb.latency.p99)}, ${((big.hb.perSecond / big.hb.expectedPerSecond) * 100).toFixed(0)} % of expected heartbeats, ${big.hb.failed} failed)` +
      `   |   k3s anchor: ${K3S_AGENTS_PER_2_CORES} agents per 2-core server → ${(big.devices / K3S_AGENTS_PER_2_CORES).toFixed(1)}× that here`);
  } else {
    console.log(`goal:    ${fmt(GOAL.devices)} devices, p99 < ${GOAL.p99Ms} ms → not run at that size   |   k3s anchor: ${K3S_AGENTS_PER_2_CORES} agents per 2-core server`);
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
