import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildSpec, millis, size } from '../cli/commands/run.js';
import { isNexusError } from '../errors/catalogue.js';
import { runIdOf, runName } from '../agent/runs.js';
import { JOB_ID_RE, jobIdOfTask, newJobId } from './ids.js';
import { byShard, logEntries, validateSpec } from './jobs.js';
import { computeKeys, parseLogKey } from './keys.js';
import { AsyncQueue } from './sse.js';
import type { Task } from '../resources/job.js';

const res = { cpuMillis: 100, memoryBytes: 1 << 20 };

describe('compute ids and keys', () => {
  it('job ids sort by creation time and task ids name their job', () => {
    const a = newJobId(Date.parse('2025-01-01T00:00:00Z'));
    const b = newJobId(Date.parse('2025-01-01T00:00:01Z'));
    assert.match(a, JOB_ID_RE);
    assert.ok(a.slice(0, 10) < b.slice(0, 10));
    assert.equal(jobIdOfTask(`${a}-12`), a);
    assert.equal(jobIdOfTask(`${a}-aggregate`), a);
    assert.equal(jobIdOfTask('not-a-task'), undefined);
    assert.equal(jobIdOfTask(a), undefined);
  });

  it('log keys round-trip and their batches become entries with the shard', () => {
    const key = computeKeys.logBatch('acme', 'j0abcdefg-3', 2, 'lz0', 7);
    assert.equal(key, '/nexus/logs/acme/j0abcdefg-3/0002.lz0/00000007');
    assert.deepEqual(parseLogKey(key), { tenant: 'acme', taskId: 'j0abcdefg-3', attempt: 2, run: 'lz0', seq: 7 });
    assert.ok(key.startsWith(computeKeys.attemptLogs('acme', 'j0abcdefg-3', 2)));
    const entries = logEntries({ key, value: JSON.stringify({ chunks: [{ stream: 'stdout', data: 'hi\n', ts: 1 }], truncated: true }) });
    assert.deepEqual(entries[0], { taskId: 'j0abcdefg-3', attempt: 2, stream: 'stdout', data: 'hi\n', ts: 1, shardIndex: 3 });
    assert.match(entries[1]!.data, /truncated/);
    const agg = logEntries({ key: computeKeys.logBatch('acme', 'j0abcdefg-aggregate', 0, 'x', 0), value: JSON.stringify({ chunks: [{ stream: 'stderr', data: 'e', ts: 2 }] }) });
    assert.equal(agg[0]!.shardIndex, -1);
  });

  it('tasks sort by shard, the aggregate step last', () => {
    const t = (shardIndex: number) => ({ shardIndex }) as Task;
    assert.deepEqual([t(-1), t(10), t(2), t(0)].sort(byShard).map((x) => x.shardIndex), [0, 2, 10, -1]);
  });

  it('a run is named by task, attempt and assignment time', () => {
    const task = { id: 'j0abcdefg-0', attempt: 1, assignedAt: '2025-01-01T00:00:00.000Z', createdAt: '2024-12-31T00:00:00.000Z' };
    assert.equal(runIdOf(task), Date.parse(task.assignedAt).toString(36));
    assert.equal(runName(task), `j0abcdefg-0.1.${runIdOf(task)}`);
    assert.notEqual(runName({ ...task, assignedAt: '2025-01-01T00:00:01.000Z' }), runName(task));
  });
});

describe('admission checks beyond the schema', () => {
  const bad = (spec: Parameters<typeof validateSpec>[0], field: string) =>
    assert.throws(() => validateSpec(spec), (e) => isNexusError(e, 'NEXUS_E_VALIDATION') && e.field === field);

  it('rejects what could never run', () => {
    bad({ driver: 'podman', command: ['x'], resources: res }, 'image');
    bad({ driver: 'exec', command: ['x'], resources: res, workdir: { files: [{ path: 'a', object: 'b/k' }] } }, 'workdir.files.0.object');
    bad({ driver: 'exec', command: ['x'], resources: res, workdir: { files: [{ path: 'a' }] } }, 'workdir.files.0.content');
    bad({ driver: 'exec', command: ['x'], resources: res, workdir: { files: [{ path: 'shards/0', content: '' }] } }, 'workdir.files.0.path');
    bad({ driver: 'exec', command: ['x'], resources: res, workdir: { files: [{ path: 'a', content: '' }, { path: 'a', content: '' }] } }, 'workdir.files.1.path');
    assert.throws(() => validateSpec({ driver: 'exec', command: ['x'], resources: { ...res, gpus: { count: 1, model: '/[/' } } }), (e) => isNexusError(e, 'NEXUS_E_VALIDATION'));
    validateSpec({ driver: 'exec', command: ['x'], resources: { ...res, gpus: { count: 1, model: '*A100*' } } });
  });
});

describe('nexus run flags', () => {
  it('parses sizes and millicores', () => {
    assert.equal(size('4G'), 4 * 1024 ** 3);
    assert.equal(size('512Mi'), 512 * 1024 ** 2);
    assert.equal(size('1.5g'), 1.5 * 1024 ** 3);
    assert.equal(size('1048576'), 1048576);
    assert.throws(() => size('4X'));
    assert.equal(millis('500'), 500);
    assert.equal(millis('250m'), 250);
    assert.throws(() => millis('0'));
    assert.throws(() => millis('1.5'));
  });

  it('builds the job spec from flags (over a spec file, when given)', () => {
    const spec = buildSpec(['sh', '-c', 'echo hi'], {
      count: 4, cpu: 2000, memory: 4 * 1024 ** 3, gpus: 1, priority: 70, timeout: 60, retries: 2,
      label: ['zone=lab'], tier: ['local'], env: ['A=1', 'B=x=y'], file: [], aggregate: 'sh agg.sh',
    });
    assert.deepEqual(spec, {
      command: ['sh', '-c', 'echo hi'], count: 4, driver: 'exec',
      resources: { cpuMillis: 2000, memoryBytes: 4 * 1024 ** 3, gpus: { count: 1 } },
      priority: 70, timeoutSeconds: 60, retry: { attempts: 2, backoffSeconds: 10 },
      constraints: { labels: { zone: 'lab' }, tier: ['local'] }, env: { A: '1', B: 'x=y' },
      aggregate: { command: ['sh', '-c', 'sh agg.sh'] },
    });
    assert.equal(buildSpec(['x'], { image: 'alpine' }).driver, 'podman');
    assert.throws(() => buildSpec([], {}), (e) => isNexusError(e, 'NEXUS_E_VALIDATION') && e.field === 'command');
    assert.throws(() => buildSpec(['x'], { env: ['NOEQUALS'] }), (e) => isNexusError(e, 'NEXUS_E_VALIDATION') && e.field === 'env');
  });
});

describe('AsyncQueue', () => {
  it('delivers pushed items in order, then ends or fails', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    setTimeout(() => {
      q.push(2);
      q.close();
    }, 5);
    const got: number[] = [];
    for await (const v of q) got.push(v);
    assert.deepEqual(got, [1, 2]);
    const f = new AsyncQueue<number>();
    setTimeout(() => f.fail(new Error('boom')), 5);
    await assert.rejects((async () => {
      for await (const _ of f) { /* nothing */ }
    })(), /boom/);
  });
});
