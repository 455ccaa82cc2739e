import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TypeRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { JobSpec, type Job } from '../resources/job.js';
import { tasksForJob, taskId } from './tasks.js';

const spec = {
  driver: 'exec',
  command: ['python', 'train.py'],
  resources: { cpuMillis: 2000, memoryBytes: 4 * 1024 ** 3, gpus: { count: 1, vendor: 'nvidia', model: '*A100*', minVramBytes: 40 * 1024 ** 3 } },
  constraints: { labels: { zone: 'a' }, tier: ['local', 'cloud'] },
  affinities: [{ labels: { disk: 'nvme' }, weight: 30 }],
  priority: 70,
  retry: { attempts: 2, backoffSeconds: 5 },
  count: 3,
  aggregate: { command: ['python', 'merge.py'] },
};

// The API validates with Ajv (fastify); TypeBox's own checker needs to be told what StringEnum
// (a Type.Unsafe JSON-schema enum) means.
TypeRegistry.Set('Unsafe', (schema: { enum?: unknown[] }, value) => (schema.enum ? schema.enum.includes(value) : true));

describe('JobSpec schema', () => {
  it('accepts a full spec', () => {
    assert.ok(Value.Check(JobSpec, spec), JSON.stringify([...Value.Errors(JobSpec, spec)].map((e) => `${e.path} ${e.message}`)));
  });

  it('rejects unknown fields, bad enums, out-of-range priority and escaping workdir paths', () => {
    assert.equal(Value.Check(JobSpec, { ...spec, colour: 'red' }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, driver: 'docker' }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, priority: 101 }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, resources: { ...spec.resources, gpus: { count: 0 } } }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, resources: { cpuMillis: 1, memoryBytes: 1, disk: 5 } }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, command: [] }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, workdir: { files: [{ path: 'data/in.csv', content: 'a,b' }] } }), true);
    assert.equal(Value.Check(JobSpec, { ...spec, workdir: { files: [{ path: '../etc/passwd', content: '' }] } }), false);
    assert.equal(Value.Check(JobSpec, { ...spec, workdir: { files: [{ path: '/etc/passwd', content: '' }] } }), false);
  });
});

describe('tasksForJob', () => {
  it('one pending task per shard, carrying priority, resources and placement', () => {
    const job: Job = { id: 'j1', tenant: 'acme', state: 'pending', spec: spec as Job['spec'], createdAt: '2025-01-01T00:00:00.000Z' };
    const tasks = tasksForJob(job, Date.UTC(2025, 0, 1));
    assert.deepEqual(tasks.map((t) => t.id), ['j1-0', 'j1-1', 'j1-2']);
    for (const [i, t] of tasks.entries()) {
      assert.equal(t.shardIndex, i);
      assert.equal(t.state, 'pending');
      assert.equal(t.priority, 70);
      assert.equal(t.attempt, 0);
      assert.deepEqual(t.placement, { constraints: spec.constraints, affinities: spec.affinities });
      assert.equal(t.createdAt, '2025-01-01T00:00:00.000Z');
    }
    assert.equal(taskId('j1', -1), 'j1-aggregate');
  });

  it('defaults: one shard at priority 50', () => {
    const job: Job = { id: 'j2', tenant: 'acme', state: 'pending', spec: { driver: 'exec', command: ['true'], resources: { cpuMillis: 1, memoryBytes: 1 } }, createdAt: '2025-01-01T00:00:00.000Z' };
    const [t, ...rest] = tasksForJob(job, '2025-01-01T00:00:00.000Z');
    assert.equal(rest.length, 0);
    assert.equal(t!.priority, 50);
    assert.equal(t!.placement, undefined);
  });
});
