import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isNexusError } from '../errors/catalogue.js';
import { TASK_STATES, type Task, type TaskState } from '../resources/job.js';
import { TASK_TRANSITIONS, canTransition, transition } from './task-state.js';

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T00:01:00.000Z';

function task(state: TaskState, extra: Partial<Task> = {}): Task {
  return {
    id: 'j1-0', jobId: 'j1', tenant: 'acme', shardIndex: 0, attempt: 0, state, priority: 50,
    resources: { cpuMillis: 100, memoryBytes: 1 << 20 }, createdAt: T0, ...extra,
  };
}

describe('task state machine', () => {
  it('the table covers every state and names only known states', () => {
    assert.deepEqual(Object.keys(TASK_TRANSITIONS).sort(), [...TASK_STATES].sort());
    for (const tos of Object.values(TASK_TRANSITIONS)) for (const to of tos) assert.ok(TASK_STATES.includes(to));
  });

  it('every pair is either allowed by the table or throws NEXUS_E_CONFLICT', () => {
    for (const from of TASK_STATES) {
      for (const to of TASK_STATES) {
        if (canTransition(from, to)) assert.equal(transition(task(from), to, T1).state, to);
        else assert.throws(() => transition(task(from), to, T1), (e) => isNexusError(e, 'NEXUS_E_CONFLICT') && e.message.includes(`${from} to ${to}`));
      }
    }
  });

  it('succeeded and cancelled are final', () => {
    assert.deepEqual(TASK_TRANSITIONS.succeeded, []);
    assert.deepEqual(TASK_TRANSITIONS.cancelled, []);
  });

  it('assigned stamps assignedAt and clears the pending reason; fields are applied', () => {
    const t = transition(task('pending', { pendingReason: 'no device' }), 'assigned', T1, { deviceId: 'd1', gpuIndices: [0] });
    assert.equal(t.assignedAt, T1);
    assert.equal(t.updatedAt, T1);
    assert.equal(t.pendingReason, undefined);
    assert.equal(t.deviceId, 'd1');
    assert.deepEqual(t.gpuIndices, [0]);
  });

  it('running stamps startedAt; terminal states stamp finishedAt', () => {
    const r = transition(task('assigned', { deviceId: 'd1' }), 'running', T1);
    assert.equal(r.startedAt, T1);
    const f = transition(r, 'failed', Date.parse(T1), { exitCode: 3 });
    assert.equal(f.finishedAt, T1);
    assert.equal(f.exitCode, 3);
  });

  it('preemption back to pending clears the placement but keeps the attempt', () => {
    const t = transition(task('running', { deviceId: 'd1', gpuIndices: [1], assignedAt: T0, startedAt: T0 }), 'pending', T1, { preemptedBy: 'x' });
    assert.equal(t.deviceId, undefined);
    assert.equal(t.gpuIndices, undefined);
    assert.equal(t.startedAt, undefined);
    assert.equal(t.attempt, 0);
    assert.equal(t.preemptedBy, 'x');
  });

  it('a retry after failed or lost bumps the attempt and clears the outcome', () => {
    const t = transition(task('failed', { deviceId: 'd1', exitCode: 1, finishedAt: T0 }), 'pending', T1);
    assert.equal(t.attempt, 1);
    assert.equal(t.exitCode, undefined);
    assert.equal(t.finishedAt, undefined);
    assert.equal(t.deviceId, undefined);
    assert.equal(transition(task('lost', { attempt: 2 }), 'pending', T1).attempt, 3);
  });

  it('does not mutate its input', () => {
    const before = task('pending');
    const copy = structuredClone(before);
    transition(before, 'assigned', T1, { deviceId: 'd' });
    assert.deepEqual(before, copy);
  });
});
