// Jobs end to end: a real server with the compute controller, a device joined over the API and a
// real task runner with the real exec driver (real processes, real sockets, a real SQLite file).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../src/client/transport.js';
import { startComputeCluster, type ComputeCluster, type TestDevice } from '../src/compute/testing.js';
import type { LogEntry } from '../src/compute/types.js';
import type { JobSpec } from '../src/resources/job.js';
import { repoRoot } from '../src/testing/cli.js';

const small = { cpuMillis: 100, memoryBytes: 32 * 1024 * 1024 };
const sh = (script: string, extra: Partial<JobSpec> = {}): JobSpec => ({ driver: 'exec', command: ['sh', '-c', script], resources: small, ...extra });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('compute: jobs on a real runner', () => {
  let c: ComputeCluster;
  let dev: TestDevice;

  before(async () => {
    c = await startComputeCluster();
    dev = await c.addDevice({ name: 'worker', cores: 4 });
  });
  after(async () => c.close());

  it('true succeeds and false fails with its exit code; the job shows its tasks and their states', async () => {
    const ok = await c.admin.jobs.create({ driver: 'exec', command: ['true'], resources: small });
    assert.match(ok.id, /^j[0-9a-z]+$/);
    assert.equal(ok.state, 'pending');
    assert.deepEqual(ok.tasks.map((t) => [t.id, t.state]), [[`${ok.id}-0`, 'pending']]);
    const bad = await c.admin.jobs.create({ driver: 'exec', command: ['false'], resources: small });
    const okDone = await c.waitJob(ok.id, ['succeeded', 'failed']);
    const badDone = await c.waitJob(bad.id, ['succeeded', 'failed']);
    assert.equal(okDone.state, 'succeeded');
    assert.equal(okDone.tasks[0]!.state, 'succeeded');
    assert.equal(okDone.tasks[0]!.exitCode, 0);
    assert.equal(okDone.tasks[0]!.deviceId, dev.id);
    assert.equal(badDone.state, 'failed');
    assert.equal(badDone.tasks[0]!.state, 'failed');
    assert.equal(badDone.tasks[0]!.exitCode, 1);
    assert.match(badDone.message ?? '', /failed after 1 attempt: exited with code 1/);
    // Every transition is an event.
    // Events are written by the controller right after each change it sees.
    const events = await c.until('the events of the job', async () => {
      const items = (await c.admin.jobs.events(ok.id)).items;
      return items.some((e) => e.kind === 'job' && e.to === 'succeeded') ? items : undefined;
    });
    const moves = events.filter((e) => e.kind === 'task').map((e) => `${e.from}>${e.to}`);
    assert.deepEqual(moves, ['pending>assigned', 'assigned>running', 'running>succeeded']);
    const jobStates = events.filter((e) => e.kind === 'job').map((e) => e.to);
    assert.equal(jobStates[0], 'pending');
    assert.equal(jobStates.at(-1), 'succeeded');
    // Listing.
    const jobs = (await c.admin.jobs.list()).items.map((j) => j.id);
    assert.ok(jobs.includes(ok.id) && jobs.includes(bad.id));
    const failedTasks = (await c.admin.tasks.list({ state: 'failed' })).items.map((t) => t.id);
    assert.ok(failedTasks.includes(`${bad.id}-0`));
    const onDevice = (await c.admin.tasks.list({ device: dev.id, job: ok.id })).items;
    assert.equal(onDevice.length, 1);
  });

  it('a command that does not exist fails with a clear reason', async () => {
    const j = await c.admin.jobs.create({ driver: 'exec', command: ['no-such-command-nexus'], resources: small });
    const done = await c.waitJob(j.id, ['failed']);
    assert.match(done.tasks[0]!.message ?? '', /command not found: no-such-command-nexus/);
  });

  it('streams output live, then keeps it; the result is stdout unless NEXUS_RESULT_FILE is written', async () => {
    const j = await c.admin.jobs.create(sh('echo one; sleep 0.6; echo two >&2; echo three'));
    const seen: LogEntry[] = [];
    let sawOneBeforeEnd = false;
    let end: { state: string } | undefined;
    for await (const m of c.admin.logs.followJob(j.id)) {
      if (m.event === 'log') seen.push(...(m.data as LogEntry[]));
      if (m.event === 'log' && !end && seen.some((l) => l.data.includes('one')) && !seen.some((l) => l.data.includes('three'))) sawOneBeforeEnd = true;
      if (m.event === 'end') end = m.data as { state: string };
    }
    assert.equal(end?.state, 'succeeded');
    assert.ok(sawOneBeforeEnd, 'the first line arrived while the task was still running');
    assert.equal(seen.filter((l) => l.stream === 'stdout').map((l) => l.data).join(''), 'one\nthree\n');
    assert.equal(seen.filter((l) => l.stream === 'stderr').map((l) => l.data).join(''), 'two\n');
    const stored = (await c.admin.logs.get(`${j.id}-0`)).items;
    assert.equal(stored.filter((l) => l.stream === 'stdout').map((l) => l.data).join(''), 'one\nthree\n');
    assert.equal((await c.admin.jobs.result(j.id)).data, 'one\nthree\n');
    const r = await c.admin.jobs.create(sh('echo noise; printf 42 > "$NEXUS_RESULT_FILE"'));
    await c.waitJob(r.id, ['succeeded']);
    assert.equal((await c.admin.tasks.result(`${r.id}-0`)).data, '42');
    // Following a finished task replays its output and ends.
    const replay: string[] = [];
    for await (const m of c.admin.logs.follow(`${r.id}-0`)) if (m.event === 'log') replay.push(...(m.data as LogEntry[]).map((l) => l.data));
    assert.equal(replay.join(''), 'noise\n');
  });

  it('a 4-shard word count with an aggregate step sums correctly', async () => {
    const dir = join(repoRoot(), 'examples', 'wordcount');
    const spec = JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')) as JobSpec;
    const j = await c.admin.jobs.create(spec);
    assert.equal(j.tasks.length, 4);
    const done = await c.waitJob(j.id, ['succeeded', 'failed'], 30_000);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.deepEqual(done.tasks.map((t) => [t.shardIndex, t.state]), [[0, 'succeeded'], [1, 'succeeded'], [2, 'succeeded'], [3, 'succeeded'], [-1, 'succeeded']]);
    // The expected counts, computed here from the same corpus.
    const expected = new Map<string, number>();
    for (const f of readdirSync(join(dir, 'corpus')).sort()) {
      for (const w of readFileSync(join(dir, 'corpus', f), 'utf8').toLowerCase().split(/[^a-z]+/).filter(Boolean)) expected.set(w, (expected.get(w) ?? 0) + 1);
    }
    const result = (await c.admin.jobs.result(j.id)).data;
    const got = new Map(result.trim().split('\n').map((l) => {
      const [n, w] = l.trim().split(/\s+/);
      return [w!, Number(n)] as const;
    }));
    assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries([...expected].sort()));
  });

  it('retries a failing task with backoff until it succeeds', async () => {
    // Fails on attempts 0 and 1, succeeds on attempt 2.
    const j = await c.admin.jobs.create(sh('echo "attempt $NEXUS_ATTEMPT"; [ "$NEXUS_ATTEMPT" -ge 2 ]', { retry: { attempts: 3, backoffSeconds: 0.3 } }));
    const done = await c.waitJob(j.id, ['succeeded', 'failed'], 20_000);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.tasks[0]!.attempt, 2);
    const events = (await c.events(j.id, (es) => es.some((e) => e.to === 'succeeded' && e.kind === 'task'))).filter((e) => e.kind === 'task');
    const failedAt = events.filter((e) => e.to === 'failed').map((e) => Date.parse(e.at));
    const retriedAt = events.filter((e) => e.from === 'failed' && e.to === 'pending');
    assert.equal(failedAt.length, 2);
    assert.equal(retriedAt.length, 2);
    assert.match(retriedAt[0]!.reason ?? '', /retry 1 of 3/);
    const assigned = events.filter((e) => e.to === 'assigned').map((e) => Date.parse(e.at));
    // Backoff: 0.3 s before the 2nd attempt, 0.6 s before the 3rd.
    assert.ok(assigned[1]! - failedAt[0]! >= 250, `first backoff ${assigned[1]! - failedAt[0]!} ms`);
    assert.ok(assigned[2]! - failedAt[1]! >= 550, `second backoff ${assigned[2]! - failedAt[1]!} ms`);
    const out = (await c.admin.logs.get(`${j.id}-0`)).items.map((l) => l.data).join('');
    assert.equal(out, 'attempt 0\nattempt 1\nattempt 2\n');
    // Without retries left the job fails.
    const never = await c.admin.jobs.create(sh('exit 7', { retry: { attempts: 1, backoffSeconds: 0 } }));
    const failed = await c.waitJob(never.id, ['failed'], 20_000);
    assert.equal(failed.tasks[0]!.attempt, 1);
    assert.equal(failed.tasks[0]!.exitCode, 7);
  });

  it('a task that runs past its timeout is stopped and fails with the reason', async () => {
    const j = await c.admin.jobs.create(sh('echo waiting; exec sleep 30', { timeoutSeconds: 1 }));
    const done = await c.waitJob(j.id, ['failed'], 20_000);
    assert.match(done.tasks[0]!.message ?? '', /timed out after 1 s/);
    assert.equal((await c.admin.logs.get(`${j.id}-0`)).items.map((l) => l.data).join(''), 'waiting\n');
  });

  it('cancel kills the running process', async () => {
    const j = await c.admin.jobs.create(sh('echo $$ > "$NEXUS_WORK_DIR/pid"; echo started; exec sleep 60'));
    const tid = `${j.id}-0`;
    await c.waitTask(tid, (t) => t.state === 'running');
    const pid = await c.until('the pid file', async () => {
      const dir = join(dev.dataDir, 'tasks');
      const run = readdirSync(dir).find((n) => n.startsWith(`${tid}.`) && !n.endsWith('.json'));
      const f = run ? join(dir, run, 'pid') : '';
      return f && existsSync(f) && readFileSync(f, 'utf8').trim() ? Number(readFileSync(f, 'utf8').trim()) : undefined;
    });
    assert.ok(alive(pid));
    const cancelled = await c.admin.jobs.cancel(j.id);
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(cancelled.tasks[0]!.state, 'cancelled');
    await c.until('the process to die', async () => !alive(pid), 10_000);
    await c.until('the runner to let go', async () => dev.runner!.active === 0);
    // Cancelling again is a no-op; a finished job stays as it was.
    assert.equal((await c.admin.jobs.cancel(j.id)).state, 'cancelled');
  });

  it('agents act only for their own device; other roles not at all', async () => {
    const other = await c.addDevice({ name: 'idle', cores: 1 }, { runner: false });
    const j = await c.admin.jobs.create(sh('sleep 5', { constraints: { deviceIds: [other.id] } }));
    const tid = `${j.id}-0`;
    await c.waitTask(tid, (t) => t.state === 'assigned');
    const forbidden = (e: ApiError) => e.code === 'NEXUS_E_FORBIDDEN';
    // dev (a device credential) cannot act for the other device, nor watch its assignments.
    await assert.rejects(dev.client.tasks.report(tid, { deviceId: other.id, attempt: 0, state: 'running' }), forbidden);
    await assert.rejects(dev.client.tasks.runSpec(tid, other.id), forbidden);
    await assert.rejects(dev.client.tasks.get(tid), forbidden);
    await assert.rejects((async () => {
      for await (const _ of dev.client.tasks.assignments(other.id)) break;
    })(), forbidden);
    // Claiming the task for itself does not work either: it is not assigned there.
    await assert.rejects(dev.client.tasks.report(tid, { deviceId: dev.id, attempt: 0, state: 'running' }), (e: ApiError) => e.code === 'NEXUS_E_TASK_MOVED');
    // A member may read jobs but not report on tasks; a join token cannot act for devices.
    const { NexusClient } = await import('../src/client/client.js');
    const member = new NexusClient({ addr: c.ts.server.url, token: (await c.admin.tokens.create({ role: 'member' })).token });
    const joinTok = new NexusClient({ addr: c.ts.server.url, token: (await c.admin.tokens.create({ role: 'agent' })).token });
    try {
      assert.equal((await member.jobs.get(j.id)).id, j.id);
      await assert.rejects(member.tasks.report(tid, { deviceId: other.id, attempt: 0, state: 'running' }), forbidden);
      await assert.rejects(joinTok.tasks.report(tid, { deviceId: other.id, attempt: 0, state: 'running' }), forbidden);
    } finally {
      member.close();
      joinTok.close();
    }
    // The right device may.
    const running = await other.client.tasks.report(tid, { deviceId: other.id, attempt: 0, state: 'running' });
    assert.equal(running.state, 'running');
    await assert.rejects(other.client.tasks.report(tid, { deviceId: other.id, attempt: 1, state: 'succeeded' }), (e: ApiError) => e.code === 'NEXUS_E_TASK_MOVED');
    const done = await other.client.tasks.report(tid, { deviceId: other.id, attempt: 0, state: 'succeeded', exitCode: 0, result: { data: 'ok', encoding: 'utf8' } });
    assert.equal(done.state, 'succeeded');
    // Reporting the same end again is a no-op.
    assert.equal((await other.client.tasks.report(tid, { deviceId: other.id, attempt: 0, state: 'succeeded', exitCode: 0 })).state, 'succeeded');
    assert.equal((await c.waitJob(j.id, ['succeeded'])).state, 'succeeded');
    assert.equal((await c.admin.jobs.result(j.id)).data, 'ok');
  });

  it('rejects bad specs at admission with a clear code', async () => {
    await assert.rejects(c.admin.jobs.create({ driver: 'exec', command: [], resources: small }), (e: ApiError) => e.code === 'NEXUS_E_VALIDATION' && e.field === 'command');
    await assert.rejects(c.admin.jobs.create({ driver: 'podman', command: ['true'], resources: small }), (e: ApiError) => e.code === 'NEXUS_E_VALIDATION' && e.field === 'image');
    await assert.rejects(c.admin.jobs.create({ driver: 'exec', command: ['true'], resources: { ...small, gpus: { count: 1, model: '/(/' } } }), (e: ApiError) => e.code === 'NEXUS_E_VALIDATION');
    await assert.rejects(c.admin.jobs.get('jnope'), (e: ApiError) => e.code === 'NEXUS_E_NOT_FOUND');
  });
});
