import { it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from './probes/testing.js';
import { cpuBusyPct, hostSampler } from './utilization.js';

const times = (user: number, idle: number) => ({ user, nice: 0, sys: 0, idle, irq: 0 });

it('cpu busy share over all cores between two snapshots', () => {
  assert.equal(cpuBusyPct([times(0, 0), times(0, 0)], [times(100, 100), times(0, 200)]), 25);
  assert.equal(cpuBusyPct([times(5, 5)], [times(5, 5)]), 0, 'no time passed');
});

it('GPU use and battery come from the periodic probes; CPU and memory from every sample', async () => {
  let t = [times(0, 0)];
  const gpu = hostSampler({ env: fixture('nvidia-rtx4080-super'), cpuTimes: () => t, memory: () => [3, 8], slowEveryMs: 60_000 });
  const bat = hostSampler({ env: fixture('laptop-on-battery'), cpuTimes: () => t, memory: () => [1, 2], slowEveryMs: 60_000 });
  try {
    let u = gpu.sample();
    for (let i = 0; i < 100 && !u.gpus; i++) {
      await new Promise((r) => setTimeout(r, 10));
      u = gpu.sample();
    }
    assert.ok(u.gpus && u.gpus.length > 0, 'GPU utilization from nvidia-smi');
    assert.equal(typeof u.gpus[0]!.utilizationPct, 'number');
    t = [times(50, 50)];
    const now = gpu.sample();
    assert.equal(now.cpuPct, 50);
    assert.equal(now.memoryUsedBytes, 3);
    assert.equal(now.memoryTotalBytes, 8);
    let b = bat.sample();
    for (let i = 0; i < 100 && !b.battery; i++) {
      await new Promise((r) => setTimeout(r, 10));
      b = bat.sample();
    }
    assert.equal(b.battery?.onBattery, true);
    assert.equal(typeof b.battery?.pct, 'number');
  } finally {
    gpu.stop();
    bat.stop();
  }
});
