import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { collectLogs, eventually, runDriverConformance, withTimeout } from './conformance.js';
import { ExecDriver } from './exec.js';
import { groupExists, isAlive, parseProcStat } from './proc.js';
import { taskPaths, type SupervisorState } from './protocol.js';
import { buildTaskEnv, gpuEnv, safeRelPath, validateSpec } from './task-env.js';
import type { RunningTask, TaskRunSpec } from './types.js';

const GRACE = 500;

runDriverConformance('exec', {
  makeDriver: () => new ExecDriver({ graceMs: GRACE }),
  hostProcesses: true,
});

describe('exec driver', () => {
  let root: string;
  const started: RunningTask[] = [];
  const driver = new ExecDriver({ graceMs: GRACE });
  let n = 0;
  const spec = (name: string, command: string[], extra: Partial<TaskRunSpec> = {}): TaskRunSpec => {
    const taskId = `exec-${process.pid}-${++n}-${name}`;
    return { taskId, command, env: {}, workDir: join(root, taskId), ...extra };
  };
  const start = async (s: TaskRunSpec, d = driver) => {
    const t = await d.start(s);
    started.push(t);
    return t;
  };
  const sh = (script: string) => ['sh', '-c', script];

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'nexus-exec-'));
  });
  after(async () => {
    await Promise.all(started.map((t) => withTimeout(t.cancel('test cleanup'), 20_000, 'cleanup').catch(() => {})));
    rmSync(root, { recursive: true, force: true });
  });

  it('gives a task exactly its assigned GPUs, and none to a task without GPUs', { timeout: 20_000 }, async () => {
    const probe = sh('echo "C=${CUDA_VISIBLE_DEVICES-unset} R=${ROCR_VISIBLE_DEVICES-unset} Z=${ZE_AFFINITY_MASK-unset} O=${CUDA_DEVICE_ORDER-unset}"');
    const cases: [TaskRunSpec['gpus'], string][] = [
      [{ vendor: 'nvidia', indices: [1, 3] }, 'C=1,3 R= Z=unset O=PCI_BUS_ID\n'],
      [{ vendor: 'amd', indices: [0, 2] }, 'C= R=0,2 Z=unset O=PCI_BUS_ID\n'],
      [{ vendor: 'intel', indices: [1] }, 'C= R= Z=1 O=PCI_BUS_ID\n'],
      [undefined, 'C= R= Z=unset O=PCI_BUS_ID\n'],
    ];
    for (const [gpus, expected] of cases) {
      const t = await start(spec('gpu', probe, gpus ? { gpus, env: { CUDA_VISIBLE_DEVICES: '0,1,2,3' } } : {}));
      assert.equal((await collectLogs(t)).stdout, expected, JSON.stringify(gpus));
    }
  });

  it("passes only allow-listed agent variables (never the agent's secrets)", { timeout: 20_000 }, async () => {
    const d = new ExecDriver({ graceMs: GRACE, baseEnv: { PATH: process.env.PATH, HOME: '/home/agent', NEXUS_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'x' } });
    const t = await start(spec('env', sh('echo "$HOME|${NEXUS_TOKEN-unset}|${AWS_SECRET_ACCESS_KEY-unset}|$MINE"'), { env: { MINE: 'ok' } }), d);
    assert.equal((await collectLogs(t)).stdout, '/home/agent|unset|unset|ok\n');
  });

  it('streams large and multi-byte output intact', { timeout: 20_000 }, async () => {
    const t = await start(spec('utf8', [process.execPath, '-e', "process.stdout.write('é✓'.repeat(200000)); process.stderr.write('done ✓')"]));
    const logs = await collectLogs(t);
    assert.equal((await t.wait()).exitCode, 0);
    assert.equal(logs.stdout, 'é✓'.repeat(200000));
    assert.equal(logs.stderr, 'done ✓');
  });

  it('reports signals that ended a task on its own', { timeout: 20_000 }, async () => {
    const exit = await (await start(spec('sig', sh('kill -KILL $$')))).wait();
    assert.equal(exit.reason, 'exited');
    assert.equal(exit.exitCode, null);
    assert.equal(exit.signal, 'SIGKILL');
  });

  it('kills what a task left behind when its main process exits', { timeout: 20_000 }, async () => {
    const t = await start(spec('leftover', sh('sleep 100 & echo $! > bg.pid; exit 0')));
    const exit = await t.wait();
    assert.equal(exit.exitCode, 0);
    const bg = Number(readFileSync(join(root, t.taskId, 'bg.pid'), 'utf8'));
    await eventually(async () => ((await isAlive(bg)) ? undefined : true), 5000, 'the background child to die');
  });

  it('start-failed for a file that is not executable, and for files escaping the work dir', { timeout: 20_000 }, async () => {
    const a = await (await start(spec('noexec', ['./run.sh'], { files: { 'run.sh': '#!/bin/sh\necho hi\n' } }))).wait();
    assert.equal(a.reason, 'start-failed');
    assert.match(a.message ?? '', /run\.sh: not an executable file/);
    const b = await (await start(spec('escape', ['true'], { files: { '../outside.txt': 'x' } }))).wait();
    assert.equal(b.reason, 'start-failed');
    assert.match(b.message ?? '', /outside\.txt/);
  });

  it('refuses a second task in a work dir whose task still runs; reuses it once that one ended', { timeout: 20_000 }, async () => {
    const s = spec('reuse', sh('sleep 100'));
    const first = await start(s);
    const second = await (await start({ ...s })).wait();
    assert.equal(second.reason, 'start-failed');
    assert.match(second.message ?? '', /still running/);
    await first.cancel('make room');
    const third = await start({ ...s, command: sh('echo again') });
    assert.equal((await collectLogs(third)).stdout, 'again\n');
    assert.equal((await third.wait()).exitCode, 0);
  });

  it('survives the death of the agent that started it (SIGKILL), and reattach finds both outcomes', { timeout: 30_000 }, async () => {
    const long = spec('orphan-long', sh('sleep 100'));
    const quick = spec('orphan-quick', sh('sleep 0.3; echo done; exit 7'));
    const script = join(root, 'agent.mjs');
    writeFileSync(
      script,
      `import { ExecDriver } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'exec.js')).href)};
const d = new ExecDriver({ graceMs: ${GRACE} });
const [a, b] = JSON.parse(process.argv[2]);
const ta = await d.start(a);
const tb = await d.start(b);
process.stdout.write(JSON.stringify({ long: ta.pid, quick: tb.pid }) + '\\n');
setInterval(() => {}, 1000);
`,
    );
    const agent = spawn(process.execPath, [script, JSON.stringify([long, quick])], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let buf = '';
        agent.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
        });
        agent.once('exit', (code) => reject(new Error(`agent exited ${code}`)));
      }),
      15_000,
      'the agent to start its tasks',
    );
    const pids = JSON.parse(line) as { long: number; quick: number };
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));

    const d = new ExecDriver({ graceMs: GRACE });
    const live = await d.reattach(long.taskId, long.workDir);
    assert.equal(live.status, 'running');
    assert.ok(await isAlive(pids.long));
    const done = await eventually(async () => {
      const r = await d.reattach(quick.taskId, quick.workDir);
      return r.status === 'finished' ? r : undefined;
    }, 10_000, 'the quick task to finish');
    assert.equal(done.exit.exitCode, 7);
    assert.equal(done.exit.reason, 'exited');
    assert.equal((await collectLogs(done.task)).stdout, 'done\n');

    if (live.status !== 'running') return;
    started.push(live.task);
    assert.equal(live.task.pid, pids.long);
    await live.task.cancel('agent restarted and drained');
    assert.equal((await live.task.wait()).reason, 'cancelled');
    assert.equal(await isAlive(pids.long), false);
  });

  it('when the supervisor dies: the task keeps running, cancel still stops it', { timeout: 20_000 }, async () => {
    const s = spec('nosup-cancel', sh('sleep 100 & sleep 100'));
    const t = await start(s);
    const state = JSON.parse(readFileSync(taskPaths(s.workDir).state, 'utf8')) as SupervisorState;
    process.kill(state.supervisor.pid, 'SIGKILL');
    await eventually(async () => ((await isAlive(state.supervisor.pid)) ? undefined : true), 5000, 'supervisor to die');
    const r = await new ExecDriver({ graceMs: GRACE }).reattach(s.taskId, s.workDir);
    assert.equal(r.status, 'running');
    assert.ok(await isAlive(t.pid!));
    if (r.status !== 'running') return;
    await r.task.cancel('orphan');
    const exit = await r.task.wait();
    assert.equal(exit.reason, 'cancelled');
    assert.equal(await isAlive(t.pid!), false);
    await eventually(() => (groupExists(t.pid!) ? undefined : true), 5000, 'group gone');
  });

  it('when the supervisor dies and the task then ends, its exit is reported as lost, not invented', { timeout: 20_000 }, async () => {
    const s = spec('nosup-lost', sh('sleep 0.5; exit 3'));
    const t = await start(s);
    const state = JSON.parse(readFileSync(taskPaths(s.workDir).state, 'utf8')) as SupervisorState;
    process.kill(state.supervisor.pid, 'SIGKILL');
    const exit = await withTimeout(t.wait(), 10_000, 'lost exit');
    assert.equal(exit.reason, 'lost');
    assert.equal(exit.exitCode, null);
    assert.match(exit.message ?? '', /supervisor died/);
    const r = await new ExecDriver().reattach(s.taskId, s.workDir);
    assert.equal(r.status, 'finished');
  });

  it('reattach checks process identity, not just that some process has the pid', { timeout: 10_000 }, async () => {
    const workDir = join(root, 'recycled');
    const paths = taskPaths(workDir);
    mkdirSync(paths.book, { recursive: true });
    // a live pid (our own) with the wrong start time: a recycled pid, not our task
    const me = { pid: process.pid, startTime: '1' };
    const state: SupervisorState = { version: 1, taskId: 'recycled', supervisor: me, task: me, startedAt: Date.now() - 1000, graceMs: GRACE };
    writeFileSync(paths.state, JSON.stringify(state));
    const r = await new ExecDriver().reattach('recycled', workDir);
    assert.equal(r.status, 'finished');
    if (r.status === 'finished') assert.equal(r.exit.reason, 'lost');
    const other = await new ExecDriver().reattach('someone-else', workDir);
    assert.equal(other.status, 'not-found');
  });
});

describe('task env and spec helpers', () => {
  const base: TaskRunSpec = { taskId: 't-1', command: ['true'], env: {}, workDir: '/tmp/w' };

  it('validates specs with readable reasons', () => {
    assert.equal(validateSpec(base), undefined);
    assert.match(validateSpec({ ...base, taskId: 'a/b' }) ?? '', /taskId/);
    assert.match(validateSpec({ ...base, command: [] }) ?? '', /command is empty/);
    assert.match(validateSpec({ ...base, workDir: 'rel' }) ?? '', /absolute/);
    assert.match(validateSpec({ ...base, shard: { index: 3, count: 3 } }) ?? '', /shard/);
    assert.match(validateSpec({ ...base, memoryBytes: -1 }) ?? '', /memoryBytes/);
    assert.match(validateSpec({ ...base, env: { 'A=B': 'x' } }) ?? '', /env/);
    assert.match(validateSpec({ ...base, gpus: { vendor: 'nvidia', indices: [-1] } }) ?? '', /GPU/);
    assert.match(validateSpec({ ...base, files: { '.nexus/exit.json': '{}' } }) ?? '', /\.nexus/);
  });

  it('keeps spec.files inside the work dir', () => {
    assert.equal(safeRelPath('/w', 'a/b.txt'), '/w/a/b.txt');
    assert.equal(safeRelPath('/w', '../x'), undefined);
    assert.equal(safeRelPath('/w', 'a/../../x'), undefined);
    assert.equal(safeRelPath('/w', '/etc/passwd'), undefined);
    assert.equal(safeRelPath('/w', '.'), undefined);
  });

  it('lets driver variables win over spec.env', () => {
    const env = buildTaskEnv(
      { ...base, env: { NEXUS_TASK_ID: 'x', CUDA_VISIBLE_DEVICES: '0,1,2', KEEP: '1' }, gpus: { vendor: 'nvidia', indices: [2] } },
      { workDir: '/tmp/w', resultFile: '/tmp/w/.nexus/result' },
      { PATH: '/bin', SECRET: 's' },
    );
    assert.equal(env.NEXUS_TASK_ID, 't-1');
    assert.equal(env.CUDA_VISIBLE_DEVICES, '2');
    assert.equal(env.KEEP, '1');
    assert.equal(env.PATH, '/bin');
    assert.equal(env.SECRET, undefined);
    assert.equal(env.NEXUS_SHARD_INDEX, '0');
    assert.equal(env.NEXUS_SHARD_COUNT, '1');
  });

  it('builds GPU visibility per vendor', () => {
    assert.deepEqual(gpuEnv(undefined), { CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: '', ROCR_VISIBLE_DEVICES: '' });
    assert.equal(gpuEnv({ vendor: 'nvidia', indices: [] }).CUDA_VISIBLE_DEVICES, '');
    assert.equal(gpuEnv({ vendor: 'amd', indices: [4, 5] }).ROCR_VISIBLE_DEVICES, '4,5');
  });

  it('parses /proc/<pid>/stat even with odd command names', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    const st = parseProcStat(`123 (a) b (c) ${fields.join(' ')}`);
    assert.deepEqual(st, { state: 'S', startTime: '22' });
    assert.equal(parseProcStat('garbage'), undefined);
  });
});
