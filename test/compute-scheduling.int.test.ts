// Placement, failure and restarts end to end: real server + compute controller + scheduler,
// devices joined over the API with heartbeats, real runners with the exec driver.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiError } from '../src/client/transport.js';
import { startComputeCluster, type ComputeCluster, type TestDevice } from '../src/compute/testing.js';
import type { JobSpec } from '../src/resources/job.js';

const MiB = 1024 * 1024;
const sh = (script: string, extra: Partial<JobSpec> = {}): JobSpec => ({
  driver: 'exec', command: ['sh', '-c', script], resources: { cpuMillis: 100, memoryBytes: 32 * MiB }, ...extra,
});
/** Writes the shell's pid into the work dir, then becomes `sleep`. */
const sleeper = (secs: number, extra: Partial<JobSpec> = {}) => sh(`echo $$ > "$NEXUS_WORK_DIR/pid"; echo started; exec sleep ${secs}`, extra);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid a sleeper task wrote on `dev` (waits for it). */
function pidOf(c: ComputeCluster, dev: TestDevice, taskId: string, not?: number): Promise<number> {
  return c.until(`pid of ${taskId} on ${dev.id}`, async () => {
    const dir = join(dev.dataDir, 'tasks');
    if (!existsSync(dir)) return undefined;
    for (const n of readdirSync(dir)) {
      if (!n.startsWith(`${taskId}.`) || n.endsWith('.json')) continue;
      const f = join(dir, n, 'pid');
      const pid = existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : 0;
      if (pid > 0 && pid !== not) return pid;
    }
    return undefined;
  });
}

async function withCluster(fn: (c: ComputeCluster) => Promise<void>): Promise<void> {
  const c = await startComputeCluster();
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

describe('compute: placement and failures', () => {
  it('a task that fits nowhere stays pending with the reason, and runs once a bigger device joins', () => withCluster(async (c) => {
    await c.addDevice({ name: 'small', cores: 1, memoryBytes: 1024 * MiB });
    const j = await c.admin.jobs.create(sh('echo big', { resources: { cpuMillis: 4000, memoryBytes: 64 * MiB } }));
    const tid = `${j.id}-0`;
    const pending = await c.waitTask(tid, (t) => t.pendingReason !== undefined);
    assert.equal(pending.state, 'pending');
    assert.match(pending.pendingReason!, /4000m CPU.*1 device checked: 1 too little CPU/);
    const shown = await c.admin.jobs.get(j.id);
    assert.equal(shown.state, 'pending');
    const big = await c.addDevice({ name: 'big', cores: 8, memoryBytes: 8192 * MiB });
    const done = await c.waitJob(j.id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.tasks[0]!.deviceId, big.id);
  }));

  it('a device that goes down: its task is lost after the grace period and runs again elsewhere; the old process is killed', () => withCluster(async (c) => {
    const a = await c.addDevice({ name: 'a', cores: 2 });
    const j = await c.admin.jobs.create(sleeper(60));
    const tid = `${j.id}-0`;
    await c.waitTask(tid, (t) => t.state === 'running' && t.deviceId === a.id);
    const pidA = await pidOf(c, a, tid);
    const b = await c.addDevice({ name: 'b', cores: 2 });
    a.heartbeats(false); // a's agent falls silent (its runner is still there, as after a network partition)
    const moved = await c.waitTask(tid, (t) => t.state === 'running' && t.deviceId === b.id, 20_000);
    assert.equal(moved.attempt, 1);
    assert.deepEqual(moved.failedDeviceIds, [a.id]);
    const device = await c.admin.devices.get(a.id);
    assert.equal(device.state, 'down');
    const events = await c.events(j.id, (es) => es.some((e) => e.to === 'running' && e.deviceId === b.id));
    const moves = events.filter((e) => e.kind === 'task').map((e) => `${e.from}>${e.to}@${e.deviceId === a.id ? 'a' : e.deviceId === b.id ? 'b' : '-'}`);
    assert.deepEqual(moves, ['pending>assigned@a', 'assigned>running@a', 'running>lost@a', 'lost>pending@-', 'pending>assigned@b', 'assigned>running@b']);
    const lost = events.find((e) => e.to === 'lost')!;
    assert.match(lost.reason ?? '', /has been down since/);
    // a's runner still hears from the server: the task left its device, so it killed the process.
    await c.until('the process on a to die', async () => !alive(pidA), 10_000);
    const pidB = await pidOf(c, b, tid);
    assert.ok(alive(pidB));
    await c.admin.jobs.cancel(j.id);
    await c.until('the process on b to die', async () => !alive(pidB), 10_000);
  }));

  it('nexus device drain moves running work off the device and places nothing new there', () => withCluster(async (c) => {
    const a = await c.addDevice({ name: 'a', cores: 2 });
    const j = await c.admin.jobs.create(sleeper(60));
    const tid = `${j.id}-0`;
    await c.waitTask(tid, (t) => t.state === 'running' && t.deviceId === a.id);
    const pidA = await pidOf(c, a, tid);
    const b = await c.addDevice({ name: 'b', cores: 2 });
    await c.admin.devices.update(a.id, { operatorState: 'draining' });
    const moved = await c.waitTask(tid, (t) => t.state === 'running' && t.deviceId === b.id, 20_000);
    assert.equal(moved.attempt, 0, 'a drain is not a failure: no retry is used up');
    await c.until('the process on a to die', async () => !alive(pidA), 10_000);
    const j2 = await c.admin.jobs.create(sleeper(60));
    const t2 = await c.waitTask(`${j2.id}-0`, (t) => t.state === 'running');
    assert.equal(t2.deviceId, b.id, 'the draining device gets no new work');
    await c.admin.jobs.cancel(j.id);
    await c.admin.jobs.cancel(j2.id);
  }));

  it('a high-priority task preempts a low-priority one, which runs again afterwards', () => withCluster(async (c) => {
    const d = await c.addDevice({ name: 'one-core', cores: 1 });
    const full = { cpuMillis: 1000, memoryBytes: 32 * MiB };
    const low = await c.admin.jobs.create(sleeper(60, { priority: 10, resources: full }));
    const lowTask = `${low.id}-0`;
    await c.waitTask(lowTask, (t) => t.state === 'running');
    const lowPid = await pidOf(c, d, lowTask);
    const high = await c.admin.jobs.create(sh('echo high', { priority: 90, resources: full }));
    const done = await c.waitJob(high.id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded');
    assert.ok(!alive(lowPid), 'the low-priority process was killed');
    const preempted = (await c.events(low.id, (es) => es.some((e) => e.from === 'running' && e.to === 'pending'))).find((e) => e.from === 'running' && e.to === 'pending');
    assert.ok(preempted, 'the low task went back to pending');
    assert.match(preempted.reason ?? '', new RegExp(`preempted by task ${high.id}-0`));
    // Once the high task is done the low one is placed again and runs (a new run of attempt 0).
    const again = await c.waitTask(lowTask, (t) => t.state === 'running');
    assert.equal(again.attempt, 0);
    const newPid = await pidOf(c, d, lowTask, lowPid);
    assert.notEqual(newPid, lowPid);
    await c.admin.jobs.cancel(low.id);
    await c.until('the new process to die', async () => !alive(newPid), 10_000);
  }));

  it('rejects a job whose task exceeds the tenant quota at admission', () => withCluster(async (c) => {
    await c.admin.tenants.create({ name: 'tiny', quotas: { cpuMillis: 500, gpus: 0 } });
    await assert.rejects(
      c.admin.jobs.create(sh('true', { resources: { cpuMillis: 1000, memoryBytes: 32 * MiB } }), 'tiny'),
      (e: ApiError) => e.code === 'NEXUS_E_QUOTA_EXCEEDED' && e.status === 403 && e.field === 'resources' && /CPU 0m used \+ 1000m requested > 500m/.test(e.message),
    );
    await assert.rejects(
      c.admin.jobs.create(sh('true', { resources: { cpuMillis: 100, memoryBytes: 32 * MiB, gpus: { count: 1 } } }), 'tiny'),
      (e: ApiError) => e.code === 'NEXUS_E_QUOTA_EXCEEDED' && /GPUs/.test(e.message),
    );
    const ok = await c.admin.jobs.create(sh('true', { resources: { cpuMillis: 400, memoryBytes: 32 * MiB } }), 'tiny');
    assert.equal(ok.tenant, 'tiny');
    // A member of another tenant cannot see it.
    const { token } = await c.admin.tokens.create({ role: 'member', tenant: 'default' });
    const { NexusClient } = await import('../src/client/client.js');
    const member = new NexusClient({ addr: c.ts.server.url, token });
    try {
      await assert.rejects(member.jobs.get(ok.id, 'tiny'), (e: ApiError) => e.code === 'NEXUS_E_TENANT_SCOPE');
      await assert.rejects(member.jobs.get(ok.id), (e: ApiError) => e.code === 'NEXUS_E_NOT_FOUND');
      assert.deepEqual((await member.jobs.list()).items, []);
    } finally {
      member.close();
    }
  }));

  it('a task for a driver the device lacks fails with a clear reason', () => withCluster(async (c) => {
    await c.addDevice({ name: 'no-podman' });
    const j = await c.admin.jobs.create({ driver: 'podman', image: 'docker.io/library/alpine:3', command: ['true'], resources: { cpuMillis: 100, memoryBytes: 32 * MiB } });
    const done = await c.waitJob(j.id, ['failed']);
    assert.match(done.tasks[0]!.message ?? '', /podman driver is not available on this device/);
  }));
});

describe('compute: agent restarts', () => {
  it('a new runner reattaches to a task that kept running and ships the rest of its output once', () => withCluster(async (c) => {
    const d = await c.addDevice({ name: 'restarts' });
    const j = await c.admin.jobs.create(sh('echo before; sleep 1.2; echo after; printf done > "$NEXUS_RESULT_FILE"'));
    const tid = `${j.id}-0`;
    await c.until('the first line to be shipped', async () => (await c.admin.logs.get(tid)).items.some((l) => l.data.includes('before')));
    await d.stopRunner();
    await new Promise((r) => setTimeout(r, 1500)); // the task finishes while no runner watches it
    assert.equal((await c.admin.tasks.get(tid)).state, 'running');
    d.startRunner();
    const done = await c.waitJob(j.id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded');
    assert.equal((await c.admin.logs.get(tid)).items.map((l) => l.data).join(''), 'before\nafter\n');
    assert.equal((await c.admin.jobs.result(j.id)).data, 'done');
  }));

  it('a task the restarted agent finds no trace of is reported lost and runs again', () => withCluster(async (c) => {
    const d = await c.addDevice({ name: 'wiped' });
    const j = await c.admin.jobs.create(sh('if [ "$NEXUS_ATTEMPT" = 0 ]; then echo $$ > "$NEXUS_WORK_DIR/pid"; exec sleep 60; fi; echo second'));
    const tid = `${j.id}-0`;
    await c.waitTask(tid, (t) => t.state === 'running');
    const pid = await pidOf(c, d, tid);
    await d.stopRunner();
    process.kill(pid, 'SIGKILL');
    rmSync(join(d.dataDir, 'tasks'), { recursive: true, force: true });
    d.startRunner();
    const done = await c.waitJob(j.id, ['succeeded', 'failed']);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.tasks[0]!.attempt, 1);
    const lost = (await c.events(j.id, (es) => es.some((e) => e.to === 'lost'))).find((e) => e.to === 'lost');
    assert.match(lost?.reason ?? '', /no record of this task/);
  }));
});
