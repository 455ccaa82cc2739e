import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isNexusError } from '../errors/catalogue.js';
import { toCandidate, type Allocated, type CandidateDevice, type ProfileRules } from './candidate.js';
import {
  REASONS, acceleratorFilter, archFilter, batteryFilter, chooseGpus, cpuFilter, deviceIdsFilter,
  feasible, inTimeWindows, nonGpuCapacityReject, quickReject, staticReject, labelsFilter, maxTasksFilter, memoryFilter, osFilter, quotaFilter, stateFilter, tierFilter,
  windowFilter, zonedWallClock, type FilterContext,
} from './feasibility.js';
import { summarizeRejections } from './pending-reason.js';
import { compileModelPattern, compileRequest } from './request.js';
import { GiB, seededRng, simDevice, simFleet, simTask, simWorkload, type SimDeviceOptions, type SimTaskOptions } from './sim.js';
import { allocatedFromDoc, emptyAllocated } from './allocations.js';

// Wednesday 2025-01-01 is a Wednesday; 12:00 UTC.
const NOON_WED = Date.UTC(2025, 0, 1, 12, 0);
const ctx: FilterContext = { now: NOON_WED };

function dev(o: SimDeviceOptions & { alloc?: Partial<Allocated> } = {}, id = 'd1'): CandidateDevice {
  const a = { ...emptyAllocated(), ...o.alloc };
  return toCandidate(simDevice(id, o), a, o.profile);
}
function req(o: SimTaskOptions = {}) {
  return compileRequest(simTask('t-0', o));
}

describe('feasibility filters', () => {
  it('state: only ready devices', () => {
    assert.equal(stateFilter(req(), dev(), ctx, dev().allocated), undefined);
    for (const state of ['unreachable', 'down', 'draining', 'maintenance'] as const) {
      const d = dev({ state });
      assert.equal(stateFilter(req(), d, ctx, d.allocated), REASONS.notReady);
    }
  });

  it('constraints: deviceIds, tier, os, arch, labels', () => {
    const d = dev({ tier: 'edge', os: 'linux', arch: 'arm64', labels: { zone: 'a', disk: 'nvme' } });
    const a = d.allocated;
    assert.equal(deviceIdsFilter(req({ placement: { constraints: { deviceIds: ['d1'] } } }), d, ctx, a), undefined);
    assert.equal(deviceIdsFilter(req({ placement: { constraints: { deviceIds: ['d2'] } } }), d, ctx, a), REASONS.notListed);
    assert.equal(tierFilter(req({ placement: { constraints: { tier: ['edge', 'local'] } } }), d, ctx, a), undefined);
    assert.equal(tierFilter(req({ placement: { constraints: { tier: ['cloud'] } } }), d, ctx, a), REASONS.tier);
    assert.equal(osFilter(req({ placement: { constraints: { os: 'linux' } } }), d, ctx, a), undefined);
    assert.equal(osFilter(req({ placement: { constraints: { os: 'darwin' } } }), d, ctx, a), REASONS.os);
    assert.equal(archFilter(req({ placement: { constraints: { arch: 'arm64' } } }), d, ctx, a), undefined);
    assert.equal(archFilter(req({ placement: { constraints: { arch: 'x64' } } }), d, ctx, a), REASONS.arch);
    assert.equal(labelsFilter(req({ placement: { constraints: { labels: { zone: 'a', disk: 'nvme' } } } }), d, ctx, a), undefined);
    assert.equal(labelsFilter(req({ placement: { constraints: { labels: { zone: 'b' } } } }), d, ctx, a), REASONS.labels);
    assert.equal(labelsFilter(req({ placement: { constraints: { labels: { gpu: 'yes' } } } }), d, ctx, a), REASONS.labels);
    // No constraints: everything passes.
    assert.equal(feasible(req(), d, ctx), undefined);
  });

  it('CPU and memory: free = capacity − profile reservation − booked', () => {
    const d = dev({ cores: 4, memGiB: 8, profile: { reservedCpuMillis: 1000, reservedMemoryBytes: 2 * GiB }, alloc: { cpuMillis: 2000, memoryBytes: 4 * GiB } });
    const a = d.allocated;
    assert.equal(cpuFilter(req({ resources: { cpuMillis: 1000 } }), d, ctx, a), undefined);
    assert.equal(cpuFilter(req({ resources: { cpuMillis: 1001 } }), d, ctx, a), REASONS.cpu);
    assert.equal(memoryFilter(req({ resources: { memoryBytes: 2 * GiB } }), d, ctx, a), undefined);
    assert.equal(memoryFilter(req({ resources: { memoryBytes: 2 * GiB + 1 } }), d, ctx, a), REASONS.memory);
  });

  it('profile: not on battery, max tasks', () => {
    const onBattery = dev({ onBattery: true, profile: { notOnBattery: true } });
    assert.equal(batteryFilter(req(), onBattery, ctx, onBattery.allocated), REASONS.battery);
    const noRule = dev({ onBattery: true });
    assert.equal(batteryFilter(req(), noRule, ctx, noRule.allocated), undefined);
    const full = dev({ profile: { maxTasks: 2 }, alloc: { tasks: 2 } });
    assert.equal(maxTasksFilter(req(), full, ctx, full.allocated), REASONS.maxTasks);
    const room = dev({ profile: { maxTasks: 2 }, alloc: { tasks: 1 } });
    assert.equal(maxTasksFilter(req(), room, ctx, room.allocated), undefined);
  });

  it('profile time windows: days, overnight wrap, UTC offset, injected now', () => {
    const office: ProfileRules = { windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }] };
    const night: ProfileRules = { windows: [{ start: '22:00', end: '06:00' }] };
    const d = dev({ profile: office });
    assert.equal(windowFilter(req(), d, { now: NOON_WED }, d.allocated), undefined);
    assert.equal(windowFilter(req(), d, { now: Date.UTC(2025, 0, 1, 18, 0) }, d.allocated), REASONS.window);
    assert.equal(windowFilter(req(), d, { now: Date.UTC(2025, 0, 4, 12, 0) }, d.allocated), REASONS.window, 'Saturday');
    assert.equal(inTimeWindows(night.windows!, Date.UTC(2025, 0, 1, 23, 30)), true);
    assert.equal(inTimeWindows(night.windows!, Date.UTC(2025, 0, 2, 5, 59)), true);
    assert.equal(inTimeWindows(night.windows!, Date.UTC(2025, 0, 2, 6, 0)), false);
    assert.equal(inTimeWindows(night.windows!, NOON_WED), false);
    // Overnight window that starts on Friday only: Saturday 03:00 is inside, Sunday 03:00 is not.
    const fri = [{ days: ['fri' as const], start: '22:00', end: '06:00' }];
    assert.equal(inTimeWindows(fri, Date.UTC(2025, 0, 4, 3, 0)), true);
    assert.equal(inTimeWindows(fri, Date.UTC(2025, 0, 5, 3, 0)), false);
    // 12:00 UTC is 14:00 at UTC+2: outside 09:00–13:00 there, inside without the offset.
    const morning = [{ start: '09:00', end: '13:00' }];
    assert.equal(inTimeWindows(morning, NOON_WED), true);
    assert.equal(inTimeWindows(morning, NOON_WED, 120), false);
    assert.throws(() => inTimeWindows([{ start: '9h', end: '10:00' }], NOON_WED), (e) => isNexusError(e, 'NEXUS_E_VALIDATION'));
    // IANA time zones: 12:00 UTC on Wednesday is 21:00 Wednesday in Tokyo, 07:00 in New York.
    const tokyo = zonedWallClock(NOON_WED, 'Asia/Tokyo');
    assert.deepEqual([tokyo.day, tokyo.minute], [3, 21 * 60]);
    assert.equal(inTimeWindows([{ days: ['wed'], start: '20:00', end: '22:00' }], NOON_WED, 0, 'Asia/Tokyo'), true);
    assert.equal(inTimeWindows([{ start: '09:00', end: '17:00' }], NOON_WED, 0, 'America/New_York'), false);
    assert.equal(inTimeWindows([], NOON_WED), true, 'no windows = any time');
    const tz = dev({ profile: { windows: [{ start: '20:00', end: '22:00' }], timeZone: 'Asia/Tokyo' } });
    assert.equal(windowFilter(req(), tz, ctx, tz.allocated), undefined);
  });

  it('accelerators: count by type, minus booked', () => {
    const d = dev({ accelerators: [{ type: 'tpu' }, { type: 'tpu' }, { type: 'npu' }], alloc: { accelerators: new Map([['tpu', 1]]) } });
    const a = d.allocated;
    assert.equal(acceleratorFilter(req({ resources: { accelerators: [{ type: 'tpu', count: 1 }] } }), d, ctx, a), undefined);
    assert.equal(acceleratorFilter(req({ resources: { accelerators: [{ type: 'tpu', count: 2 }] } }), d, ctx, a), REASONS.accelerators);
    assert.equal(acceleratorFilter(req({ resources: { accelerators: [{ type: 'npu', count: 1 }, { type: 'tpu', count: 1 }] } }), d, ctx, a), undefined);
    assert.equal(acceleratorFilter(req({ resources: { accelerators: [{ type: 'jetson', count: 1 }] } }), d, ctx, a), REASONS.accelerators);
  });

  it('tenant quota hook', () => {
    const d = dev();
    const r = req({ tenant: 'acme' });
    assert.equal(quotaFilter(r, d, { now: 0, quota: (x) => (x.tenant === 'acme' ? 'over quota' : undefined) }, d.allocated), 'over quota');
    assert.equal(feasible(r, d, { now: 0, quota: () => 'over quota' }), 'over quota');
    assert.equal(feasible(r, d, { now: 0 }), undefined);
  });
});

describe('GPU choice', () => {
  const mixed = () =>
    dev({
      gpus: [
        { name: 'NVIDIA A100-SXM4-80GB', vramGiB: 80 },
        { name: 'NVIDIA GeForce RTX 4090', vramGiB: 24 },
        { name: 'NVIDIA A100-SXM4-40GB', vramGiB: 40 },
        { name: 'NVIDIA GeForce RTX 4090', vramGiB: 24 },
      ],
    });

  it('picks the free GPUs with the least VRAM that still meet minVram (least waste), sorted by index', () => {
    const d = mixed();
    assert.deepEqual(chooseGpus(req({ resources: { gpus: { count: 1, minVramBytes: 30 * GiB } } }), d), [2]);
    assert.deepEqual(chooseGpus(req({ resources: { gpus: { count: 2 } } }), d), [1, 3]);
    assert.deepEqual(chooseGpus(req({ resources: { gpus: { count: 2, minVramBytes: 40 * GiB } } }), d), [0, 2]);
  });

  it('skips GPUs in use and says so when that is the only reason', () => {
    const d = mixed();
    d.allocated.gpuIndices = new Set([2]);
    assert.deepEqual(chooseGpus(req({ resources: { gpus: { count: 1, minVramBytes: 30 * GiB } } }), d), [0]);
    d.allocated.gpuIndices = new Set([0, 2]);
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 1, minVramBytes: 30 * GiB } } }), d), REASONS.gpusBusy);
  });

  it('vendor, model glob and regex, VRAM, count: each with its reason', () => {
    const d = mixed();
    assert.deepEqual(chooseGpus(req({ resources: { gpus: { count: 2, model: '*a100*' } } }), d), [0, 2]);
    assert.deepEqual(chooseGpus(req({ resources: { gpus: { count: 1, model: '/RTX\\s+4090/' } } }), d), [1]);
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 1, model: '*H100*' } } }), d), REASONS.gpuModel);
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 1, vendor: 'amd' } } }), d), REASONS.gpuVendor);
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 1, minVramBytes: 81 * GiB } } }), d), REASONS.vram);
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 5 } } }), d), REASONS.fewGpus);
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 1 } } }), dev()), REASONS.noGpu);
  });

  it('GPUs reporting the same index (MIG instances) count once', () => {
    const d = dev({ gpus: [{ vramGiB: 80 }, { vramGiB: 80 }] });
    d.capabilities.gpus[1]!.index = 0;
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 2 } } }), d), REASONS.fewGpus);
  });

  it('glob is case-insensitive and anchored; a bad regex is rejected at admission and never matches', () => {
    assert.equal(compileModelPattern('a100*').test('NVIDIA A100'), false);
    assert.equal(compileModelPattern('*a100*').test('NVIDIA A100'), true);
    assert.equal(compileModelPattern('NVIDIA ?100').test('nvidia a100'), true);
    assert.throws(() => compileModelPattern('/(/'), (e) => isNexusError(e, 'NEXUS_E_VALIDATION'));
    assert.equal(chooseGpus(req({ resources: { gpus: { count: 1, model: '/(/' } } }), mixed()), REASONS.gpuModel);
  });
});

describe('pending reasons', () => {
  it('summarises why every device said no, most common first', () => {
    const r = req({ resources: { gpus: { count: 1, minVramBytes: 24 * GiB } } });
    const devices = [
      dev({ gpus: [{ vramGiB: 12 }] }, 'a'),
      dev({ gpus: [{ vramGiB: 16 }] }, 'b'),
      dev({ gpus: [{ vramGiB: 48 }], onBattery: true, profile: { notOnBattery: true } }, 'c'),
    ];
    const counts = new Map<string, number>();
    for (const d of devices) {
      const why = feasible(r, d, ctx);
      assert.ok(why);
      counts.set(why, (counts.get(why) ?? 0) + 1);
    }
    assert.equal(summarizeRejections(r, counts, 3), 'no device has a GPU with ≥ 24 GiB free (3 devices checked: 2 too little VRAM, 1 on battery)');
  });

  it('names CPU/memory for CPU tasks and says when there are no devices at all', () => {
    const r = req({ resources: { cpuMillis: 2000, memoryBytes: 512 * 1024 * 1024 } });
    assert.equal(summarizeRejections(r, new Map([[REASONS.cpu, 1]]), 1), 'no device has 2000m CPU and 512 MiB memory free (1 device checked: 1 too little CPU)');
    assert.equal(summarizeRejections(r, new Map(), 0), 'no devices are registered');
  });

  it('the alloc document round-trips into the candidate view', () => {
    const a = allocatedFromDoc({ deviceId: 'd', cpuMillis: 5, memoryBytes: 6, gpuIndices: [1, 3], tasks: 2, accelerators: { tpu: 1 } });
    assert.deepEqual([...a.gpuIndices], [1, 3]);
    assert.equal(a.accelerators?.get('tpu'), 1);
  });
});

describe('the fused hot-loop filter', () => {
  it('quickReject gives exactly the answer of the individual filters, in the same order', () => {
    const rng = seededRng(5);
    const fleet = simFleet(300, rng).map((d, i) => {
      const a = emptyAllocated();
      a.cpuMillis = Math.floor(rng() * d.capabilities.cpu.logicalCores * 1000);
      a.memoryBytes = Math.floor(rng() * d.capabilities.memory.totalBytes);
      a.tasks = Math.floor(rng() * 4);
      if (rng() < 0.1) (d as { state: string }).state = 'draining';
      const profiles: (ProfileRules | undefined)[] = [
        undefined,
        { notOnBattery: true },
        { maxTasks: 2, reservedCpuMillis: 500, reservedMemoryBytes: GiB },
        { windows: [{ start: '13:00', end: '14:00' }] },
        { windows: [{ start: '20:00', end: '22:00' }], timeZone: 'Asia/Tokyo' },
        { missing: true },
      ];
      const c = toCandidate(d, a, profiles[i % profiles.length]);
      if (i % 7 === 0) c.power = { onBattery: true };
      return c;
    });
    const tasks = simWorkload(300, rng).map((t, i) => {
      if (i % 5 === 0) t.placement = { constraints: { arch: 'arm64', os: 'linux' } };
      if (i % 11 === 0) t.resources.accelerators = [{ type: 'tpu', count: 1 }];
      if (i % 13 === 0) t.placement = { constraints: { deviceIds: ['dev-000001', 'dev-000002'] } };
      return compileRequest(t);
    });
    let rejected = 0;
    for (const r of tasks) {
      for (const d of fleet) {
        const slow = staticReject(r, d, ctx) ?? nonGpuCapacityReject(r, d, ctx);
        assert.equal(quickReject(r, d, ctx), slow);
        if (slow) rejected++;
      }
    }
    assert.ok(rejected > 1000 && rejected < 90_000, `a mix of yes and no (${rejected})`);
  });
});
