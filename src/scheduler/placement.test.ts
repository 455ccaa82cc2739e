import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyAllocated } from './allocations.js';
import { toCandidate, type Allocated, type CandidateDevice } from './candidate.js';
import type { FilterContext } from './feasibility.js';
import { Planner, bookInto, type Victim } from './placement.js';
import { compileRequest } from './request.js';
import { GiB, simDevice, simTask, type SimDeviceOptions, type SimTaskOptions } from './sim.js';

const ctx: FilterContext = { now: Date.UTC(2025, 0, 1, 12) };
function dev(id: string, o: SimDeviceOptions & { alloc?: Partial<Allocated> } = {}): CandidateDevice {
  return toCandidate(simDevice(id, o), { ...emptyAllocated(), ...o.alloc }, o.profile);
}
const req = (o: SimTaskOptions = {}) => compileRequest(simTask('t-0', o));
const fixed = (x: number) => () => x;

function victim(id: string, priority: number, cpuMillis: number, gpuIndices: number[] = []): Victim {
  return { taskId: id, tenant: 'other', priority, cpuMillis, memoryBytes: GiB, gpuIndices };
}

describe('Planner.place', () => {
  it('bin-packs onto the fullest feasible device and returns the GPUs it chose', () => {
    const devices = [
      dev('a', { cores: 8, alloc: { cpuMillis: 1000 } }),
      dev('b', { cores: 8, alloc: { cpuMillis: 7000 } }),
      dev('c', { cores: 8, alloc: { cpuMillis: 7500 } }), // too full for 1000m
    ];
    const d = new Planner({ rng: fixed(0) }).place(req({ resources: { cpuMillis: 1000 } }), devices, ctx);
    assert.equal(d.kind, 'place');
    assert.equal(d.kind === 'place' && d.device.id, 'b');
    const g = new Planner({ rng: fixed(0) }).place(
      req({ resources: { gpus: { count: 1, minVramBytes: 20 * GiB } } }),
      [dev('g', { gpus: [{ vramGiB: 80 }, { vramGiB: 24 }] })],
      ctx,
    );
    assert.deepEqual(g.kind === 'place' && g.gpuIndices, [1]);
  });

  it('scores only a sample: the scan stops after `min` feasible devices, from a rotating start', () => {
    // 10 identical devices except one far fuller (best) at index 9.
    const devices = Array.from({ length: 10 }, (_, i) => dev(`d${i}`, { cores: 8, alloc: { cpuMillis: i === 9 ? 6000 : 0 } }));
    const p = new Planner({ rng: fixed(0), sample: { min: 3, percentage: 0 } });
    const first = p.place(req(), devices, ctx);
    assert.equal(first.kind === 'place' && first.device.id, 'd0', 'only d0..d2 were looked at');
    assert.equal(p.position, 0, 'packing: the next scan starts at the first device that fitted');
    // Spread rotates past everything looked at.
    const spread = req({ placement: { spread: true } });
    const ps6 = new Planner({ rng: fixed(0), sample: { min: 1, percentage: 0 } });
    ps6.place(spread, devices, ctx);
    assert.equal(ps6.position, 2, 'spread scores 2x the sample and rotates past every device it looked at');
    // A full sample finds the best wherever the scan starts.
    const all = new Planner({ rng: fixed(0.5), sample: { min: 10 } }).place(req(), devices, ctx);
    assert.equal(all.kind === 'place' && all.device.id, 'd9');
  });

  it('packing: the window slides past devices that filled up', () => {
    const devices = Array.from({ length: 6 }, (_, i) => dev(`d${i}`, { cores: 1 }));
    const p = new Planner({ rng: fixed(0), sample: { min: 2, percentage: 0 } });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const d = p.place(req({ resources: { cpuMillis: 1000 } }), devices, ctx);
      assert.equal(d.kind, 'place');
      if (d.kind !== 'place') return;
      seen.push(d.device.id);
      d.device.allocated.cpuMillis += 1000; // book it
    }
    assert.deepEqual(seen, ['d0', 'd1', 'd2', 'd3', 'd4', 'd5']);
    assert.equal(p.place(req({ resources: { cpuMillis: 1000 } }), devices, ctx).kind, 'none');
  });

  it('a constrained task scans only the devices its constraints allow, with its own cursor', () => {
    const devices = [dev('a'), dev('b', { tier: 'edge' }), dev('c'), dev('d', { tier: 'edge', alloc: { cpuMillis: 4000 } })];
    const p = new Planner({ rng: fixed(0), sample: { min: 1, percentage: 0 } });
    const edge = req({ placement: { constraints: { tier: ['edge'] } } });
    const d1 = p.place(edge, devices, ctx);
    assert.equal(d1.kind === 'place' && d1.device.id, 'b');
    assert.equal(p.position, -1, 'the unconstrained cursor did not move');
    // Static attributes change: tell the planner.
    devices[1]!.tier = 'local';
    p.devicesChanged();
    const d2 = p.place(edge, devices, ctx);
    assert.equal(d2.kind === 'place' && d2.device.id, 'd');
    // Nothing fits: the reason still counts every device, not only the constrained list.
    const none = p.place(req({ resources: { cpuMillis: 8000 }, placement: { constraints: { tier: ['edge'] } } }), devices, ctx);
    assert.equal(none.kind === 'none' && none.reason, 'no device has 8000m CPU and 1 GiB memory free (4 devices checked: 3 wrong tier, 1 too little CPU)');
  });

  it('the injected RNG picks where the first scan starts', () => {
    const devices = Array.from({ length: 10 }, (_, i) => dev(`d${i}`));
    const p = new Planner({ rng: fixed(0.55), sample: { min: 1, percentage: 0 } });
    const d = p.place(req(), devices, ctx);
    assert.equal(d.kind === 'place' && d.device.id, 'd5');
  });

  it('when nothing fits, says why for every device checked', () => {
    const devices = [
      dev('a', { gpus: [{ vramGiB: 12 }] }),
      dev('b', { gpus: [{ vramGiB: 16 }] }),
      dev('c', { gpus: [{ vramGiB: 48 }], onBattery: true, profile: { notOnBattery: true } }),
    ];
    const d = new Planner({ rng: fixed(0) }).place(req({ resources: { gpus: { count: 1, minVramBytes: 24 * GiB } } }), devices, ctx);
    assert.equal(d.kind, 'none');
    assert.equal(d.kind === 'none' && d.reason, 'no device has a GPU with ≥ 24 GiB free (3 devices checked: 2 too little VRAM, 1 on battery)');
    const q = new Planner().place(req(), devices, { ...ctx, quota: () => 'tenant acme quota: …' });
    assert.equal(q.kind === 'none' && q.reason, 'tenant acme quota: …');
  });

  it('a device an earlier attempt failed on is avoided when another fits', () => {
    const devices = [dev('bad', { alloc: { cpuMillis: 6000 } }), dev('good')];
    const d = new Planner({ rng: fixed(0) }).place(req({ failedDeviceIds: ['bad'] }), devices, ctx);
    assert.equal(d.kind === 'place' && d.device.id, 'good');
  });
});

describe('Planner.preempt', () => {
  it('evicts only tasks ≥ 10 priority points lower, as few and as low as possible', () => {
    const a = dev('a', { cores: 4, alloc: { cpuMillis: 4000, tasks: 2 } });
    const b = dev('b', { cores: 4, alloc: { cpuMillis: 4000, tasks: 4 } });
    const victims: Record<string, Victim[]> = {
      a: [victim('a1', 45, 2000), victim('a2', 30, 2000)],
      b: [victim('b1', 10, 1000), victim('b2', 10, 1000), victim('b3', 10, 1000), victim('b4', 10, 1000)],
    };
    const p = new Planner();
    const plan = p.preempt(req({ priority: 50, resources: { cpuMillis: 2000 } }), [a, b], ctx, (d) => victims[d.id]!);
    assert.ok(plan);
    // a1 (45) is within 10 points: not evictable. On a, evicting a2 (30) suffices; on b, two tasks
    // at 10. Lowest highest-priority wins: b, with exactly two victims.
    assert.equal(plan.device.id, 'b');
    assert.equal(plan.victims.length, 2);
    assert.ok(plan.victims.every((v) => v.priority === 10));
  });

  it('reprieves victims that do not need to go, and chooses GPUs freed by the victims', () => {
    const g = dev('g', { cores: 16, gpus: [{ vramGiB: 24 }, { vramGiB: 24 }], alloc: { cpuMillis: 2000, tasks: 2, gpuIndices: new Set([0, 1]) } });
    const vs = [victim('cpuonly', 0, 1000), victim('gpu1', 20, 1000, [1])];
    const plan = new Planner().preempt(req({ priority: 90, resources: { gpus: { count: 1 } } }), [g], ctx, () => vs);
    assert.ok(plan);
    assert.deepEqual(plan.victims.map((v) => v.taskId), ['gpu1'], 'the CPU-only task is reprieved: evicting it frees no GPU');
    assert.deepEqual(plan.gpuIndices, [1]);
  });

  it('no plan when the gap is under 10, when evicting everything is not enough, or the device is unfit', () => {
    const a = dev('a', { cores: 4, alloc: { cpuMillis: 4000, tasks: 1 } });
    const p = new Planner();
    assert.equal(p.preempt(req({ priority: 50, resources: { cpuMillis: 1000 } }), [a], ctx, () => [victim('x', 41, 4000)]), undefined);
    assert.ok(p.preempt(req({ priority: 50, resources: { cpuMillis: 1000 } }), [a], ctx, () => [victim('x', 40, 4000)]));
    assert.equal(p.preempt(req({ priority: 50, resources: { cpuMillis: 5000 } }), [a], ctx, () => [victim('x', 0, 4000)]), undefined);
    const draining = dev('d', { cores: 4, state: 'draining', alloc: { cpuMillis: 4000, tasks: 1 } });
    assert.equal(p.preempt(req({ priority: 90, resources: { cpuMillis: 1000 } }), [draining], ctx, () => [victim('x', 0, 4000)]), undefined);
    assert.equal(p.preempt(req({ priority: 5 }), [a], ctx, () => [victim('x', 0, 4000)]), undefined);
  });

  it('bookInto adds and removes a booking', () => {
    const al = emptyAllocated();
    bookInto(al, { cpuMillis: 1, memoryBytes: 2, gpuIndices: [3], accelerators: [{ type: 'tpu', count: 1 }] }, 1);
    assert.deepEqual([al.cpuMillis, al.memoryBytes, al.tasks, [...al.gpuIndices], al.accelerators?.get('tpu')], [1, 2, 1, [3], 1]);
    bookInto(al, { cpuMillis: 1, memoryBytes: 2, gpuIndices: [3], accelerators: [{ type: 'tpu', count: 1 }] }, -1);
    assert.deepEqual([al.cpuMillis, al.memoryBytes, al.tasks, al.gpuIndices.size, al.accelerators?.size], [0, 0, 0, 0, 0]);
  });
});
