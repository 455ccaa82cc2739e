/**
 * Compute end to end: trivial tasks (`true`) on local agents, beside a real peer and the floor.
 *
 *   npm run bench -- compute [--runs 20] [--tasks 1000] [--agents 2] [--mode both|count|jobs]
 *                            [--peers slurm,bullmq] [--bullmq-dir /tmp/peers] [--inflight 8]
 *                            [--max-seconds 240] [--cpu-prof DIR]
 *
 * NEXUS: a real `nexus dev` (server + its agent) plus `--agents - 1` more `nexus agent` processes
 * joined to it, each in its own data dir under a temp dir, all child processes of this one.
 * - single task: `--runs` times, one job `true` submitted through the SDK while the agents are
 *   idle; submit → the task `succeeded` as seen on the job's live event stream (GET
 *   /v1/jobs/:id/logs?follow=true, what `nexus run --wait` reads). Also split by the server's own
 *   timestamps: submit→assigned (scheduler), →running (agent got it, supervisor started the
 *   process), →finished (the exit reported), and when the job itself turned succeeded.
 * - throughput, `--mode count`: one job with `count: --tasks` (`nexus run --count 1000 -- true`),
 *   submit → job succeeded on the same stream; `--mode jobs`: `--tasks` jobs of one task each,
 *   `--inflight` submissions at a time, until every one succeeded (GET /v1/jobs?state=succeeded
 *   every 200 ms).
 * The floor: `child_process.spawn('true')` 200 times one after another (median), and spawns/s
 * with two running at a time (the machine has 2 cores).
 * Peers, in the same run (each skipped with the reason when it cannot be set up):
 * - Slurm 22.05 (Debian's slurm-wlm; needs root): a private munged + slurmctld + slurmd started
 *   by bench/peers/slurm.sh from bench/peers/slurm.conf.in (SchedulerParameters tuned as in
 *   shared/PEERS.md); `srun true` latency; `--tasks` × `sbatch --wrap true` (`--inflight` at a
 *   time) until `squeue` is empty; and one `sbatch --array=0-(N-1) --wrap true` (the
 *   counterpart of one job with count N) when time allows.
 * - BullMQ + Redis: a private redis-server, 2 workers × 50 concurrency
 *   (bench/peers/bullmq-worker.mjs) each job spawning `true`; single job add → finished, and
 *   `--tasks` jobs (addBulk) until all completed. BullMQ is loaded from --bullmq-dir (where
 *   `npm i bullmq ioredis` was run), never from the repo.
 * Every phase is bounded by --max-seconds overall; every process started here is stopped by its
 * PID at the end (also on SIGINT/SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NexusClient } from '../src/client/client.js';
import type { TaskDoc } from '../src/compute/types.js';
import type { JobSpec } from '../src/resources/job.js';
import { NEXUS_BIN, repoRoot } from '../src/testing/cli.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    tasks: { type: 'string', default: '1000' },
    agents: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'both' },
    peers: { type: 'string', default: 'slurm,bullmq' },
    'bullmq-dir': { type: 'string', default: '/tmp/peers' },
    inflight: { type: 'string', default: '8' },
    'floor-runs': { type: 'string', default: '200' },
    cpu: { type: 'string', default: '100' },
    'max-seconds': { type: 'string', default: '240' },
    'cpu-prof': { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
  },
});
const RUNS = Math.max(1, Number(args.runs));
const TASKS = Math.max(1, Number(args.tasks));
const AGENTS = Math.max(1, Number(args.agents));
const MODES = args.mode === 'both' ? ['count', 'jobs'] : [args.mode];
const PEERS = new Set(args.peers.split(',').map((s) => s.trim()).filter(Boolean));
const INFLIGHT = Math.max(1, Number(args.inflight));
const FLOOR_RUNS = Math.max(2, Number(args['floor-runs']));
const CPU_MILLIS = Math.max(1, Number(args.cpu));
const DEADLINE = Date.now() + Math.max(10, Number(args['max-seconds'])) * 1000;
const PEERS_DIR = join(repoRoot(), 'bench', 'peers');

/** Time left before the deadline, keeping `reserveMs` for the phases still to come. */
const left = (reserveMs = 0) => Math.max(0, DEADLINE - reserveMs - Date.now());
/** Kept for the peers while NEXUS runs (and for BullMQ while Slurm runs). */
const BULLMQ_RESERVE = PEERS.has('bullmq') ? 25_000 : 0;
const PEER_RESERVE = (PEERS.has('slurm') ? 75_000 : 0) + BULLMQ_RESERVE;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const pct = (xs: number[], p: number) => (xs.length ? sorted(xs)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
const med = (xs: number[]) => pct(xs, 50);
const ms = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '—');
const rate = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');

// ---------------------------------------------------------------------------------------------
// Processes this run starts, and stopping them (by PID) whatever happens
// ---------------------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', () => {});
  return child;
}

function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups.reverse()) await c().catch((e) => console.error(`cleanup: ${(e as Error).message}`));
    await Promise.all([...children].map((c) => stopChild(c)));
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping every process this benchmark started`);
    void cleanupAll().then(() => process.exit(130));
  });
}

/** Spawns and resolves once stdout/stderr matches `ready` (rejects on exit or after `timeoutMs`). */
function spawnReady(cmd: string, argv: string[], ready: RegExp, opts: { env?: NodeJS.ProcessEnv; cwd?: string; uid?: number; gid?: number } = {}, timeoutMs = 30_000): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }));
    let out = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        void stopChild(child, 1000);
        reject(err);
      } else resolve({ child, output: () => out });
    };
    const timer = setTimeout(() => finish(new Error(`${cmd} not ready within ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
      if (ready.test(out)) finish();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => finish(new Error(`${cmd}: ${e.message}`)));
    child.once('exit', (code, sig) => finish(new Error(`${cmd} exited (${code ?? sig}) before it was ready:\n${out.slice(-2000)}`)));
  });
}

/** Runs a command to completion; resolves with its exit code and output. */
function runCmd(cmd: string, argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}, timeoutMs = 60_000): Promise<{ code: number | null; out: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = now();
    const child = track(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => void stopChild(child, 1000), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, out: `${out}${e.message}`, ms: now() - t0 });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: now() - t0 });
    });
  });
}

/** CPU seconds of a process itself and of its reaped children (task supervisors and tasks), from /proc. */
function cpuOf(pid: number | undefined): { self: number; children: number } {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const tick = 100; // USER_HZ
    return { self: (Number(f[11]) + Number(f[12])) / tick, children: (Number(f[13]) + Number(f[14])) / tick };
  } catch {
    return { self: NaN, children: NaN };
  }
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** `n` calls of `fn(i)` with at most `k` in flight. */
async function pool(n: number, k: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, k) }, async () => {
    while (next < n) await fn(next++);
  }));
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

interface Row {
  name: string;
  /** single task submit → done, ms */
  lat?: number[];
  /** throughput */
  n?: number;
  wallMs?: number;
  note?: string;
  skipped?: string;
}
const rows: Row[] = [];
const tput = (r: Row) => (r.n && r.wallMs ? r.n / (r.wallMs / 1000) : NaN);

// ---------------------------------------------------------------------------------------------
// The floor
// ---------------------------------------------------------------------------------------------

function spawnTrue(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const c = spawn('true', [], { stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', () => resolve(now() - t0));
  });
}

async function floor(): Promise<void> {
  const seq: number[] = [];
  for (let i = 0; i < FLOOR_RUNS; i++) seq.push(await spawnTrue());
  const n = FLOOR_RUNS * 2;
  const t0 = now();
  await pool(n, 2, async () => void (await spawnTrue()));
  const wall = now() - t0;
  console.log(`floor: spawn('true') ×${FLOOR_RUNS} one at a time: median ${ms(med(seq))} ms, p90 ${ms(pct(seq, 90))} ms; ×${n} two at a time: ${rate(n / (wall / 1000))}/s`);
  rows.push({ name: "floor: child_process.spawn('true')", lat: seq, n, wallMs: wall, note: '2 at a time' });
}

// ---------------------------------------------------------------------------------------------
// NEXUS
// ---------------------------------------------------------------------------------------------

async function nexus(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-compute-'));
  if (!args['keep-dir']) cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const prof = args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`] : [];
  if (args['cpu-prof']) mkdirSync(args['cpu-prof'], { recursive: true });
  const env = { ...process.env, NEXUS_LOG_LEVEL: 'warn' };
  const port = await freePort();
  const t0 = now();
  const dev = await spawnReady(process.execPath, [...prof, NEXUS_BIN, 'dev', '--data-dir', join(dir, 'dev'), '--port', String(port)], /NEXUS dev .* ready/, { env });
  cleanups.push(() => stopChild(dev.child, 10_000));
  const procs: { name: string; pid: number | undefined }[] = [{ name: 'nexus dev (server + agent)', pid: dev.child.pid }];
  const addr = `http://127.0.0.1:${port}`;
  const admin = new NexusClient({ addr, token: readFileSync(join(dir, 'dev', 'admin-token'), 'utf8').trim() });
  cleanups.push(async () => admin.close());
  for (let i = 1; i < AGENTS; i++) {
    const { token } = await admin.tokens.create({ role: 'agent', name: `bench agent ${i}` });
    const a = await spawnReady(process.execPath, [...prof, NEXUS_BIN, 'agent', '--join', addr, '--token', token, '--data-dir', join(dir, `agent${i}`), '--name', `bench-agent-${i}`], /NEXUS agent ready/, { env });
    cleanups.push(() => stopChild(a.child, 10_000));
    procs.push({ name: `agent ${i + 1}`, pid: a.child.pid });
  }
  /** Where the CPU went between two snapshots, per task. */
  const cpuSnap = () => ({ at: procs.map((p) => cpuOf(p.pid)), me: process.cpuUsage() });
  const cpuReport = (a: ReturnType<typeof cpuSnap>, n: number) => {
    const b = cpuSnap();
    const per = (s: number) => `${((s * 1000) / Math.max(1, n)).toFixed(1)}`;
    let total = (b.me.user + b.me.system - a.me.user - a.me.system) / 1e6;
    const parts = procs.map((p, i) => {
      const self = b.at[i]!.self - a.at[i]!.self;
      const kids = b.at[i]!.children - a.at[i]!.children;
      total += self + kids;
      return `${p.name} ${per(self)} + its supervisors and tasks ${per(kids)}`;
    });
    console.log(`  CPU ms per task: ${parts.join('; ')}; this client ${per((b.me.user + b.me.system - a.me.user - a.me.system) / 1e6)}; total ${per(total)} (${cpus().length} cores ⇒ at most ${rate((cpus().length * n) / total)} tasks/s at this cost)`);
  };
  for (;;) {
    const ready = (await admin.devices.list()).items.filter((d) => d.state === 'ready');
    if (ready.length >= AGENTS) break;
    if (left() === 0) throw new Error('the agents did not become ready');
    await sleep(50);
  }
  console.log(`NEXUS: nexus dev + ${AGENTS - 1} more agent${AGENTS === 2 ? '' : 's'} ready in ${ms(now() - t0)} ms (${AGENTS} devices of ${cpus().length} cores; tasks ask ${CPU_MILLIS}m CPU, so ${Math.floor((cpus().length * 1000) / CPU_MILLIS)} at a time per device)`);

  const spec = (count = 1): JobSpec => ({ driver: 'exec', command: ['true'], resources: { cpuMillis: CPU_MILLIS, memoryBytes: 32 * 1024 * 1024 }, ...(count > 1 ? { count } : {}) }) as JobSpec;

  /** Follows a job's live stream until it ends; calls onTask for each task message. */
  async function follow(jobId: string, onTask: (t: TaskDoc) => void, budgetMs: number): Promise<boolean> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), budgetMs);
    try {
      for await (const m of admin.logs.followJob(jobId, { signal: abort.signal })) {
        if (m.event === 'task') onTask(m.data as TaskDoc);
        else if (m.event === 'end') return true;
      }
      return false;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  // (a) one task on idle agents
  const lat: number[] = [];
  const toJob: number[] = [];
  const phases = { submit: [] as number[], assigned: [] as number[], running: [] as number[], finished: [] as number[], seen: [] as number[] };
  for (let i = 0; i < RUNS && left() > 5000; i++) {
    const t0 = now();
    const wall0 = Date.now();
    const job = await admin.jobs.create(spec());
    phases.submit.push(now() - t0);
    let tTask = NaN;
    let doc: TaskDoc | undefined;
    const ok = await follow(job.id, (t) => {
      if (t.state === 'succeeded' && Number.isNaN(tTask)) {
        tTask = now();
        doc = t;
      }
    }, Math.min(30_000, left()));
    if (!ok || !doc) throw new Error(`job ${job.id} did not finish (single-task run ${i})`);
    lat.push(tTask - t0);
    toJob.push(now() - t0);
    const at = (s?: string) => (s ? Date.parse(s) : NaN);
    phases.assigned.push(at(doc.assignedAt) - at(doc.createdAt));
    phases.running.push(at(doc.startedAt) - at(doc.assignedAt));
    phases.finished.push(at(doc.finishedAt) - at(doc.startedAt));
    phases.seen.push(wall0 + (tTask - t0) - at(doc.finishedAt));
    await sleep(50);
  }
  console.log(`NEXUS single task, submit → task succeeded (live stream), ${lat.length} runs: median ${ms(med(lat))} ms, p90 ${ms(pct(lat, 90))} ms; → job succeeded: median ${ms(med(toJob))} ms`);
  console.log(`  POST /v1/jobs round trip ${ms(med(phases.submit))}; split by server timestamps (medians, ms resolution): created→assigned ${ms(med(phases.assigned))}, assigned→running ${ms(med(phases.running))}, running→finished ${ms(med(phases.finished))}, finished→seen by the client ${ms(med(phases.seen))}`);
  rows.push({ name: `NEXUS (${AGENTS} agents) single task`, lat });

  // (b) throughput
  let lastWall = 0;
  for (const mode of MODES) {
    const label = `NEXUS ${mode === 'count' ? `1 job × ${TASKS} tasks` : `${TASKS} jobs × 1 task`}`;
    // A second mode runs only if it fits beside the peers (estimated from the first).
    if (left(PEER_RESERVE) < Math.max(10_000, lastWall * 1.3)) {
      console.log(`${label}: skipped: it would not fit in --max-seconds beside the peers (run it alone with --mode ${mode} --peers none)`);
      rows.push({ name: label, skipped: 'would not fit in --max-seconds' });
      continue;
    }
    const cpu0 = cpuSnap();
    if (mode === 'count') {
      const t0 = now();
      const job = await admin.jobs.create(spec(TASKS));
      const tSub = now() - t0;
      let succeeded = 0;
      const ok = await follow(job.id, (t) => {
        if (t.state === 'succeeded') succeeded++;
      }, left(PEER_RESERVE));
      const wall = now() - t0;
      const final = await admin.jobs.get(job.id);
      const done = final.counts.succeeded ?? 0;
      const how = !ok ? `stopped at the time limit, ${done} of ${TASKS} succeeded` : final.state === 'succeeded' ? 'all succeeded' : `the job ${final.state} (${final.message ?? ''}), ${done} of ${TASKS} succeeded`;
      console.log(`NEXUS 1 job with count ${TASKS}: submit took ${ms(tSub)} ms; ${how} in ${ms(wall)} ms → ${rate(done / (wall / 1000))} tasks/s`);
      if (final.state !== 'succeeded') {
        const bad = (await admin.tasks.list({ job: job.id, state: 'failed' })).items.slice(0, 3);
        for (const t of bad) console.log(`  failed: ${t.id} on ${t.deviceId}: ${t.message ?? `exit ${t.exitCode}`}`);
      }
      cpuReport(cpu0, done);
      rows.push({ name: label, n: done, wallMs: wall, note: !ok ? 'TIMED OUT' : final.state === 'succeeded' ? 'count job' : `JOB ${final.state.toUpperCase()}` });
      lastWall = wall;
    } else {
      const t0 = now();
      const ids = new Set<string>();
      await pool(TASKS, INFLIGHT, async () => {
        if (left(PEER_RESERVE) === 0) return;
        ids.add((await admin.jobs.create(spec())).id);
      });
      const tSub = now() - t0;
      let done = 0;
      while (left(PEER_RESERVE) > 0) {
        const { items } = await admin.jobs.list({ state: 'succeeded' });
        done = items.filter((j) => ids.has(j.id)).length;
        if (done >= ids.size) break;
        await sleep(200);
      }
      const wall = now() - t0;
      const ok = done >= TASKS;
      console.log(`NEXUS ${TASKS} jobs of 1 task (${INFLIGHT} submissions in flight): submitted in ${ms(tSub)} ms (${rate(ids.size / (tSub / 1000))} jobs/s); ${ok ? 'all succeeded' : `stopped at the time limit, ${done} succeeded`} in ${ms(wall)} ms → ${rate(done / (wall / 1000))} tasks/s`);
      cpuReport(cpu0, done);
      rows.push({ name: label, n: done, wallMs: wall, note: ok ? `${INFLIGHT} in flight` : 'TIMED OUT' });
      lastWall = wall;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Slurm
// ---------------------------------------------------------------------------------------------

async function slurm(): Promise<void> {
  const name = 'Slurm';
  const why = (reason: string) => {
    console.log(`Slurm: skipped: ${reason}`);
    rows.push({ name, skipped: reason });
  };
  if (process.getuid?.() !== 0) return why('needs root (munged runs as the munge user, SlurmUser=root)');
  if (!existsSync('/usr/sbin/slurmctld') && !existsSync('/usr/bin/slurmctld')) return why('slurm-wlm is not installed (apt-get install -y slurm-wlm munge)');
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-slurm-'));
  const script = join(PEERS_DIR, 'slurm.sh');
  // Whatever happens: stop the daemons by the PIDs slurm.sh recorded, then remove the dir.
  cleanups.push(async () => {
    await runCmd('bash', [script, 'stop', dir], {}, 20_000);
    for (const n of ['slurmd', 'slurmctld', 'munged']) {
      const pidFile = join(dir, `${n}.pid`);
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8'));
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (!args['keep-dir']) rmSync(dir, { recursive: true, force: true });
  });
  const t0 = now();
  const started = await runCmd('bash', [script, 'start', dir], {}, Math.min(60_000, left()));
  if (started.code !== 0) return why(`bench/peers/slurm.sh start failed: ${started.out.trim().split('\n').slice(-3).join(' / ')}`);
  console.log(`Slurm: ${started.out.trim()} (up in ${ms(now() - t0)} ms)`);
  const env = { ...process.env, SLURM_CONF: join(dir, 'slurm.conf') };
  const opts = { env, cwd: dir };
  const queued = async () => {
    const r = await runCmd('squeue', ['-h', '-o', '%i'], opts, 10_000);
    return r.code === 0 ? r.out.split('\n').filter((l) => l.trim()).length : -1;
  };
  const drain = async () => {
    while (left(BULLMQ_RESERVE) > 0) {
      const n = await queued();
      if (n === 0) return true;
      await sleep(100);
    }
    return false;
  };

  const lat: number[] = [];
  for (let i = 0; i < RUNS && left() > 5000; i++) {
    const r = await runCmd('srun', ['-Q', 'true'], opts, 30_000);
    if (r.code !== 0) return why(`srun true failed: ${r.out.trim().slice(-300)}`);
    lat.push(r.ms);
  }
  console.log(`Slurm single task, srun true, ${lat.length} runs: median ${ms(med(lat))} ms, p90 ${ms(pct(lat, 90))} ms`);
  rows.push({ name: 'Slurm srun true', lat });

  let sbatchWall = 0;
  {
    const t0 = now();
    let failed = 0;
    await pool(TASKS, INFLIGHT, async () => {
      if (left(BULLMQ_RESERVE) === 0) return;
      const r = await runCmd('sbatch', ['-Q', '--output=/dev/null', '--wrap', 'true'], opts, 30_000);
      if (r.code !== 0) failed++;
    });
    const tSub = now() - t0;
    const ok = await drain();
    const wall = now() - t0;
    const done = TASKS - failed - (ok ? 0 : Math.max(0, await queued()));
    console.log(`Slurm ${TASKS} × sbatch --wrap true (${INFLIGHT} at a time): submitted in ${ms(tSub)} ms${failed ? ` (${failed} sbatch failed)` : ''}; ${ok ? 'squeue empty' : 'stopped at the time limit'} after ${ms(wall)} ms → ${rate(done / (wall / 1000))} jobs/s`);
    rows.push({ name: `Slurm ${TASKS} × sbatch --wrap true`, n: done, wallMs: wall, note: ok ? `${INFLIGHT} sbatch at a time` : 'TIMED OUT' });
    sbatchWall = wall;
  }
  if (left(BULLMQ_RESERVE) > Math.max(10_000, sbatchWall * 1.3) && TASKS <= 1000) {
    const t0 = now();
    const r = await runCmd('sbatch', ['-Q', `--array=0-${TASKS - 1}`, '--output=/dev/null', '--wrap', 'true'], opts, 30_000);
    if (r.code !== 0) {
      console.log(`Slurm array: sbatch failed: ${r.out.trim().slice(-300)}`);
    } else {
      const ok = await drain();
      const wall = now() - t0;
      console.log(`Slurm sbatch --array=0-${TASKS - 1} --wrap true: ${ok ? 'squeue empty' : 'stopped at the time limit'} after ${ms(wall)} ms → ${rate(TASKS / (wall / 1000))} tasks/s`);
      rows.push({ name: `Slurm 1 array job × ${TASKS}`, n: ok ? TASKS : NaN, wallMs: wall, note: ok ? 'job array' : 'TIMED OUT' });
    }
  } else {
    console.log(`Slurm array job: skipped: it would not fit in --max-seconds${TASKS > 1000 ? ` (or --tasks > MaxArraySize 1001)` : ''}`);
    rows.push({ name: `Slurm 1 array job × ${TASKS}`, skipped: 'would not fit in --max-seconds' });
  }
}

// ---------------------------------------------------------------------------------------------
// BullMQ
// ---------------------------------------------------------------------------------------------

async function bullmq(): Promise<void> {
  const name = 'BullMQ';
  const why = (reason: string) => {
    console.log(`BullMQ: skipped: ${reason}`);
    rows.push({ name, skipped: reason });
  };
  const bdir = args['bullmq-dir'];
  if (!existsSync(join(bdir, 'node_modules', 'bullmq'))) return why(`no bullmq under ${bdir} (mkdir -p ${bdir} && cd ${bdir} && npm init -y && npm i bullmq ioredis; or --bullmq-dir)`);
  const which = await runCmd('sh', ['-c', 'command -v redis-server'], {}, 5000);
  if (which.code !== 0) return why('redis-server is not installed (apt-get install -y redis-server)');
  const require = createRequire(join(bdir, 'package.json'));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const { Queue, QueueEvents } = require('bullmq') as any;
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-redis-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const redis = await spawnReady(which.out.trim(), ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir], /Ready to accept connections/, {}, 20_000)
    .catch((e: Error) => e);
  if (redis instanceof Error) return why(`redis-server did not start: ${redis.message.slice(0, 300)}`);
  cleanups.push(() => stopChild(redis.child));
  const queueName = 'nexus-bench';
  const workers = await Promise.all([0, 1].map(() => spawnReady(process.execPath, [join(PEERS_DIR, 'bullmq-worker.mjs'), '--bullmq-dir', bdir, '--port', String(port), '--queue', queueName, '--concurrency', '50'], /^ready$/m, {}, 20_000)))
    .catch((e: Error) => e);
  if (workers instanceof Error) return why(`the workers did not start: ${workers.message.slice(0, 300)}`);
  for (const w of workers) cleanups.push(() => stopChild(w.child));
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const queue = new Queue(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  cleanups.push(async () => {
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
  });
  await queue.waitUntilReady();
  await events.waitUntilReady();

  const lat: number[] = [];
  for (let i = 0; i < RUNS && left() > 5000; i++) {
    const t0 = now();
    const job = await queue.add('true', {});
    await job.waitUntilFinished(events, 30_000);
    lat.push(now() - t0);
    await sleep(50);
  }
  console.log(`BullMQ single job (2 workers × 50, each job spawns true), add → finished, ${lat.length} runs: median ${ms(med(lat))} ms, p90 ${ms(pct(lat, 90))} ms`);
  rows.push({ name: 'BullMQ 2 workers × 50', lat });

  const base = (await queue.getJobCounts('completed')).completed as number;
  const t0 = now();
  await queue.addBulk(Array.from({ length: TASKS }, (_, i) => ({ name: 'true', data: { i } })));
  const tSub = now() - t0;
  let done = 0;
  while (left() > 0) {
    const c = await queue.getJobCounts('completed', 'failed');
    done = (c.completed as number) - base + (c.failed as number);
    if (done >= TASKS) break;
    await sleep(20);
  }
  const wall = now() - t0;
  console.log(`BullMQ ${TASKS} jobs (addBulk in ${ms(tSub)} ms): ${done >= TASKS ? 'all finished' : `stopped at the time limit, ${done} finished`} in ${ms(wall)} ms → ${rate(done / (wall / 1000))} jobs/s`);
  rows.push({ name: `BullMQ ${TASKS} jobs`, n: done, wallMs: wall, note: '2 workers × 50' });
}

// ---------------------------------------------------------------------------------------------

function table(): void {
  const fl = rows.find((r) => r.name.startsWith('floor'));
  const nxLat = rows.find((r) => r.name.startsWith('NEXUS') && r.lat);
  const nxT = rows.filter((r) => r.name.startsWith('NEXUS') && r.n !== undefined);
  const nxRates = nxT.map(tput).filter(Number.isFinite);
  const bestNx = nxRates.length > 0 ? Math.max(...nxRates) : NaN;
  const head = ['', 'single: median ms', 'p90 ms', 'tasks', 'wall s', 'tasks/s', 'NEXUS lat ×', 'NEXUS tput ×', 'note'];
  const out: string[][] = [head];
  for (const r of rows) {
    if (r.skipped) {
      const why = r.skipped.split('\n')[0]!;
      out.push([r.name, '', '', '', '', '', '', '', `skipped: ${why.length > 120 ? `${why.slice(0, 117)}...` : why}`]);
      continue;
    }
    const isNx = r.name.startsWith('NEXUS');
    const l = r.lat ? med(r.lat) : NaN;
    const t = tput(r);
    out.push([
      r.name,
      r.lat ? ms(l) : '',
      r.lat ? ms(pct(r.lat, 90)) : '',
      r.n !== undefined ? String(r.n) : '',
      r.wallMs !== undefined ? (r.wallMs / 1000).toFixed(2) : '',
      r.n !== undefined ? rate(t) : '',
      !isNx && r.lat && nxLat?.lat ? `${(med(nxLat.lat) / l).toFixed(2)}` : '',
      !isNx && r.n !== undefined && Number.isFinite(bestNx) ? `${(bestNx / t).toFixed(2)}` : '',
      r.note ?? '',
    ]);
  }
  const w = head.map((_, i) => Math.max(...out.map((row) => row[i]!.length)));
  console.log(`\nCompute, end to end (${cpus().length} cores; NEXUS lat × = NEXUS median / this row's; NEXUS tput × = best NEXUS tasks/s / this row's)`);
  for (const row of out) console.log('  ' + row.map((c, i) => (i === 0 || i === 8 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd());
  if (fl?.lat && nxLat?.lat) console.log(`  NEXUS single task = ${(med(nxLat.lat) / med(fl.lat)).toFixed(0)}× the cost of spawning true; NEXUS tasks/s = ${((bestNx / tput(fl)) * 100).toFixed(1)}% of the spawn floor`);
}

async function main(): Promise<void> {
  console.log(`NEXUS compute benchmark: ${TASKS} trivial tasks (true), ${RUNS} single-task runs, time limit ${Math.round(left() / 1000)} s`);
  await floor();
  try {
    await nexus();
  } catch (e) {
    console.log(`NEXUS: FAILED: ${(e as Error).stack ?? e}`);
    rows.push({ name: 'NEXUS', skipped: `failed: ${(e as Error).message}` });
  }
  // Stop NEXUS before the peers run (they share 2 cores).
  await cleanupAll();
  cleaning = undefined;
  cleanups.length = 0;
  for (const [peer, fn] of [['slurm', slurm], ['bullmq', bullmq]] as const) {
    if (!PEERS.has(peer)) continue;
    if (left() < 15_000) {
      rows.push({ name: peer === 'slurm' ? 'Slurm' : 'BullMQ', skipped: 'out of time (--max-seconds)' });
      continue;
    }
    try {
      await fn();
    } catch (e) {
      console.log(`${peer}: FAILED: ${(e as Error).message}`);
      rows.push({ name: peer, skipped: `failed: ${(e as Error).message.slice(0, 200)}` });
    }
    await cleanupAll();
    cleaning = undefined;
    cleanups.length = 0;
  }
  table();
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanupAll();
    process.exit(process.exitCode ?? 0);
  });
