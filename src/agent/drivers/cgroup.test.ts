import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  cpuMaxValue, createTaskCgroup, detectCgroupV2, parseMountInfo, parseOwnCgroup, taskCgroupName, type CgroupSupport,
} from './cgroup.js';
import { collectLogs, withTimeout } from './conformance.js';
import { ExecDriver } from './exec.js';
import type { RunningTask } from './types.js';

// Lines as this machine and typical hosts print them (see /proc/self/mountinfo).
const MI_HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const MI_V1 = MI_HYBRID.split('\n').slice(0, 3).join('\n');
const MI_UNIFIED = '29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';

/** A fake root: /proc/self/{mountinfo,cgroup} and cgroup dirs as plain files. */
function fakeRoot(base: string, name: string, files: Record<string, string>): string {
  const root = join(base, name);
  for (const [p, content] of Object.entries(files)) {
    const abs = join(root, p);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, content);
  }
  return root;
}

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('cgroup v2 detection (fixtures)', () => {
  let base: string;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'nexus-cg-'));
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('parses mountinfo and /proc/self/cgroup', () => {
    const m = parseMountInfo(`${MI_HYBRID}\n36 31 0:33 / /mnt/with\\040space rw - cgroup2 cgroup2 rw`);
    assert.equal(m.length, 5);
    assert.deepEqual(m[1], { root: '/', mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', superOptions: ['rw', 'cpu'] });
    assert.equal(m[4]!.mountPoint, '/mnt/with space');
    assert.equal(parseOwnCgroup('4:memory:/x\n0::/system.slice/nexus.service\n'), '/system.slice/nexus.service');
    assert.equal(parseOwnCgroup('4:memory:/x\n'), undefined);
  });

  it('v1 only: says there is no cgroup2', async () => {
    const root = fakeRoot(base, 'v1', { 'proc/self/mountinfo': MI_V1, 'proc/self/cgroup': '4:memory:/\n' });
    const s = await detectCgroupV2({ root });
    assert.equal(s.enforced, false);
    assert.match((s as { reason: string }).reason, /no cgroup2 filesystem.*cpu, memory on v1/);
  });

  it('hybrid (this sandbox): cgroup2 without controllers, because v1 holds cpu and memory', async () => {
    const root = fakeRoot(base, 'hybrid', {
      'proc/self/mountinfo': MI_HYBRID,
      'proc/self/cgroup': '4:memory:/process_api/x\n1:cpu:/\n0::/\n',
      'sys/fs/cgroup/unified/cgroup.controllers': '\n',
      'sys/fs/cgroup/unified/cgroup.subtree_control': '\n',
    });
    const s = await detectCgroupV2({ root });
    assert.equal(s.enforced, false);
    assert.match((s as { reason: string }).reason, /cpu and memory are bound to cgroup v1 hierarchies \(hybrid/);
  });

  it('controllers not delegated to our cgroup', async () => {
    const root = fakeRoot(base, 'nodeleg', {
      'proc/self/mountinfo': MI_UNIFIED,
      'proc/self/cgroup': '0::/user.slice/user-1000.slice/session-2.scope\n',
      'sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cgroup.controllers': 'pids\n',
      'sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cgroup.subtree_control': '',
    });
    const s = await detectCgroupV2({ root });
    assert.match((s as { reason: string }).reason, /controllers cpu, memory are not available in \/sys\/fs\/cgroup\/user\.slice.*delegated/);
  });

  it('our cgroup holds processes: enabling subtree controllers fails with EBUSY, and says why', async () => {
    const root = fakeRoot(base, 'busy', {
      'proc/self/mountinfo': MI_UNIFIED,
      'proc/self/cgroup': '0::/system.slice/nexus-agent.service\n',
      'sys/fs/cgroup/system.slice/nexus-agent.service/cgroup.controllers': 'cpu io memory pids\n',
      'sys/fs/cgroup/system.slice/nexus-agent.service/cgroup.subtree_control': '\n',
    });
    const s = await detectCgroupV2({ root, write: async () => Promise.reject(errno('EBUSY')) });
    assert.equal(s.enforced, false);
    assert.match((s as { reason: string }).reason, /EBUSY.*no internal processes/);
  });

  it('read-only cgroupfs (a container without delegation)', async () => {
    const root = fakeRoot(base, 'ro', {
      'proc/self/mountinfo': MI_UNIFIED,
      'proc/self/cgroup': '0::/\n',
      'sys/fs/cgroup/cgroup.controllers': 'cpu memory\n',
      'sys/fs/cgroup/cgroup.subtree_control': '\n',
    });
    const s = await detectCgroupV2({ root, write: async () => Promise.reject(errno('EROFS')) });
    assert.match((s as { reason: string }).reason, /EROFS.*not writable/);
  });

  it('enabled and writable: tasks go under our cgroup', async () => {
    const root = fakeRoot(base, 'ok', {
      'proc/self/mountinfo': MI_UNIFIED,
      'proc/self/cgroup': '0::/nexus\n',
      'sys/fs/cgroup/nexus/cgroup.controllers': 'cpu memory pids\n',
      'sys/fs/cgroup/nexus/cgroup.subtree_control': 'cpu memory\n',
    });
    const s = await detectCgroupV2({ root });
    assert.deepEqual(s, { enforced: true, parent: join(root, 'sys/fs/cgroup/nexus'), mount: join(root, 'sys/fs/cgroup') });
  });

  it('a configured delegated parent: enables the controllers there; refuses one outside cgroup2', async () => {
    const root = fakeRoot(base, 'parent', {
      'proc/self/mountinfo': MI_UNIFIED,
      'proc/self/cgroup': '0::/system.slice/nexus.service/agent\n',
      'sys/fs/cgroup/system.slice/nexus.service/cgroup.controllers': 'cpu memory\n',
      'sys/fs/cgroup/system.slice/nexus.service/cgroup.subtree_control': '',
    });
    const writes: string[] = [];
    const s = await detectCgroupV2({
      root,
      parent: '/sys/fs/cgroup/system.slice/nexus.service',
      write: async (p, d) => {
        writes.push(`${p.slice(root.length)} ${d}`);
        writeFileSync(p, d);
      },
    });
    assert.equal(s.enforced, true);
    assert.deepEqual(writes, ['/sys/fs/cgroup/system.slice/nexus.service/cgroup.subtree_control +cpu +memory']);
    const bad = await detectCgroupV2({ root, parent: '/tmp/not-a-cgroup' });
    assert.match((bad as { reason: string }).reason, /not inside a cgroup2 mount/);
  });

  it('cpu.max from millicores', () => {
    assert.equal(cpuMaxValue(500), '50000 100000');
    assert.equal(cpuMaxValue(2500), '250000 100000');
    assert.equal(cpuMaxValue(1), '1000 100000'); // the kernel's minimum quota
  });

  it('creates a task cgroup with its limits; write failures come back as errors', async () => {
    const parent = join(base, 'cgparent');
    mkdirSync(parent, { recursive: true });
    const made = await createTaskCgroup(parent, 't1', { cpuMillis: 250, memoryBytes: 50 * 1024 * 1024 });
    assert.ok('dir' in made);
    if (!('dir' in made)) return;
    assert.equal(made.dir, join(parent, taskCgroupName('t1')));
    assert.equal(readFileSync(join(made.dir, 'cpu.max'), 'utf8'), '25000 100000');
    assert.equal(readFileSync(join(made.dir, 'memory.max'), 'utf8'), String(50 * 1024 * 1024));
    const failed = await createTaskCgroup(parent, 't2', { memoryBytes: 1 }, { write: async () => Promise.reject(errno('EINVAL')) });
    assert.ok('error' in failed);
    if ('error' in failed) assert.match(failed.error, /memory\.max.*EINVAL/);
  });
});

describe('exec driver with a (fake) delegated cgroup', () => {
  let base: string;
  const started: RunningTask[] = [];
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'nexus-cgx-'));
  });
  after(async () => {
    await Promise.all(started.map((t) => t.cancel('cleanup').catch(() => {})));
    rmSync(base, { recursive: true, force: true });
  });

  const driverWithFakeCgroup = () => {
    const root = fakeRoot(base, 'root', {
      'proc/self/mountinfo': MI_UNIFIED,
      'proc/self/cgroup': '0::/agent\n',
      'sys/fs/cgroup/agent/cgroup.controllers': 'cpu memory\n',
      'sys/fs/cgroup/agent/cgroup.subtree_control': 'cpu memory\n',
    });
    return { root, driver: new ExecDriver({ graceMs: 500, cgroup: { root } }) };
  };

  it('writes limits, and the task joins its cgroup before it execs (same pid, no window)', { timeout: 20_000 }, async () => {
    const { root, driver } = driverWithFakeCgroup();
    assert.equal((await driver.limits()).enforced, true);
    const workDir = join(base, 'w1');
    const t = await driver.start({ taskId: 'cg1', command: ['sh', '-c', 'echo $$'], env: {}, workDir, cpuMillis: 500, memoryBytes: 64 << 20 });
    started.push(t);
    assert.deepEqual(t.limits, { enforced: true, mechanism: 'cgroup-v2', cgroup: join(root, 'sys/fs/cgroup/agent/nexus-task-cg1') });
    const logs = await collectLogs(t);
    assert.equal((await t.wait()).reason, 'exited');
    const dir = t.limits.cgroup!;
    assert.equal(readFileSync(join(dir, 'cpu.max'), 'utf8'), '50000 100000');
    assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), String(64 << 20));
    // the shim wrote its own pid, then exec'd the command, which printed the same pid
    assert.equal(readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim(), logs.stdout.trim());
    assert.equal(String(t.pid), logs.stdout.trim());
  });

  it("reads memory.events after exit: an OOM kill becomes reason 'oom'", { timeout: 20_000 }, async () => {
    const { root, driver } = driverWithFakeCgroup();
    // play the kernel: record an oom_kill in the task's cgroup, then die by SIGKILL
    const events = join(root, 'sys/fs/cgroup/agent', taskCgroupName('cg2'), 'memory.events');
    const t2 = await driver.start({
      taskId: 'cg2',
      command: ['sh', '-c', 'printf "oom 1\\noom_kill 1\\n" > "$CG_EVENTS"; kill -KILL $$'],
      env: { CG_EVENTS: events },
      workDir: join(base, 'w2'),
      memoryBytes: 50 << 20,
    });
    started.push(t2);
    const exit2 = await withTimeout(t2.wait(), 10_000, 'exit');
    assert.equal(exit2.reason, 'oom');
    assert.equal(exit2.signal, 'SIGKILL');
    assert.match(exit2.message ?? '', /OOM/);
  });
});

// ---- the real thing, where this machine allows it ----

let real: CgroupSupport | undefined;
const realSupport = async () => (real ??= await detectCgroupV2());
const support = await realSupport();
const skipReal = support.enforced ? false : `cgroup v2 limits unavailable here: ${support.reason}`;

describe('cgroup v2 on this machine', () => {
  it('reports what this machine allows', async () => {
    const s = await realSupport();
    // always true; the diagnostic is the point
    if (s.enforced) assert.ok(existsSync(s.parent));
    else assert.ok(s.reason.length > 10, s.reason);
  });

  describe('enforcement', { skip: skipReal }, () => {
    let base: string;
    const driver = new ExecDriver({ graceMs: 500 });
    before(() => {
      base = mkdtempSync(join(tmpdir(), 'nexus-cgreal-'));
    });
    after(() => rmSync(base, { recursive: true, force: true }));

    it("a task allocating 200 MB under a 50 MB limit is killed with reason 'oom'", { timeout: 30_000 }, async () => {
      const t = await driver.start({
        taskId: `oom-${process.pid}`,
        command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=200M', 'count=1'],
        env: {},
        workDir: join(base, 'oom'),
        memoryBytes: 50 * 1024 * 1024,
      });
      assert.equal(t.limits.enforced, true, t.limits.reason);
      const exit = await withTimeout(t.wait(), 25_000, 'oom kill');
      assert.equal(exit.reason, 'oom', JSON.stringify(exit));
      assert.equal(existsSync(t.limits.cgroup!), false, 'cgroup removed after exit');
    });

    it('writes cpu.max, keeps every child in the cgroup, removes the cgroup after exit', { timeout: 30_000 }, async () => {
      const t = await driver.start({
        taskId: `cpu-${process.pid}`,
        command: ['sh', '-c', 'sh -c "cat /proc/self/cgroup" | grep "^0::"'],
        env: {},
        workDir: join(base, 'cpu'),
        cpuMillis: 250,
      });
      assert.equal(t.limits.enforced, true, t.limits.reason);
      const dir = t.limits.cgroup!;
      const cpuMax = await readFile(join(dir, 'cpu.max'), 'utf8').catch(() => '');
      const logs = await collectLogs(t);
      await t.wait();
      if (cpuMax) assert.equal(cpuMax.trim(), '25000 100000');
      assert.match(logs.stdout, new RegExp(`^0::.*/${taskCgroupName(`cpu-${process.pid}`)}$`, 'm'));
      assert.equal(existsSync(dir), false);
    });
  });
});
