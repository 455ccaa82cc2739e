import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyAllocated } from './allocations.js';
import { toCandidate, type Allocated, type CandidateDevice } from './candidate.js';
import { compileRequest } from './request.js';
import {
  DEFAULT_WEIGHTS, affinityScore, failurePenalty, fitScore, gpuFitScore, gpuHoardPenalty, sampleSize, scoreDevice, speedScore, type ScoreContext,
} from './score.js';
import { GiB, simDevice, simTask, type SimDeviceOptions, type SimTaskOptions } from './sim.js';

function dev(id: string, o: SimDeviceOptions & { alloc?: Partial<Allocated> } = {}): CandidateDevice {
  return toCandidate(simDevice(id, o), { ...emptyAllocated(), ...o.alloc }, o.profile);
}
const req = (o: SimTaskOptions = {}) => compileRequest(simTask('t-0', o));
const sctx = (extra: Partial<ScoreContext> = {}): ScoreContext => ({ weights: { ...DEFAULT_WEIGHTS }, maxSpeedScore: 0, ...extra });

describe('scoring', () => {
  it('bin-pack by default: the fuller device scores higher; spread inverts it', () => {
    const empty = dev('empty', { cores: 8, memGiB: 32 });
    const busy = dev('busy', { cores: 8, memGiB: 32, alloc: { cpuMillis: 6000, memoryBytes: 24 * GiB } });
    const r = req({ resources: { cpuMillis: 1000, memoryBytes: GiB } });
    assert.ok(fitScore(r, busy) > fitScore(r, empty));
    assert.ok(scoreDevice(r, busy, sctx()) > scoreDevice(r, empty, sctx()));
    const s = req({ resources: { cpuMillis: 1000, memoryBytes: GiB }, placement: { spread: true } });
    assert.ok(fitScore(s, empty) > fitScore(s, busy));
    assert.ok(scoreDevice(s, empty, sctx()) > scoreDevice(s, busy, sctx()));
  });

  it('GPU fit: least wasted VRAM wins', () => {
    const r = req({ resources: { gpus: { count: 1, minVramBytes: 20 * GiB } } });
    const small = dev('small', { gpus: [{ vramGiB: 24 }] });
    const big = dev('big', { gpus: [{ vramGiB: 80 }] });
    assert.ok(gpuFitScore(r, small, [0]) > gpuFitScore(r, big, [0]));
    assert.ok(scoreDevice(r, small, sctx(), [0]) > scoreDevice(r, big, sctx(), [0]));
    assert.equal(gpuFitScore(req(), small, []), 0);
  });

  it('a CPU-only task is steered away from devices with free GPUs', () => {
    const r = req();
    const gpuBox = dev('g', { gpus: [{ vramGiB: 24 }] });
    const cpuBox = dev('c');
    assert.equal(gpuHoardPenalty(r, gpuBox), 1);
    assert.equal(gpuHoardPenalty(r, cpuBox), 0);
    assert.ok(scoreDevice(r, cpuBox, sctx()) > scoreDevice(r, gpuBox, sctx()));
  });

  it('device speed relative to the fastest device', () => {
    const fast = dev('f', { speedScore: 1000 });
    const slow = dev('s', { speedScore: 250 });
    assert.equal(speedScore(fast, 1000), 1);
    assert.equal(speedScore(slow, 1000), 0.25);
    assert.equal(speedScore(dev('n'), 1000), 0);
    assert.ok(scoreDevice(req(), fast, sctx({ maxSpeedScore: 1000 })) > scoreDevice(req(), slow, sctx({ maxSpeedScore: 1000 })));
  });

  it('affinities add their weights (labels, tier, device), clamped to ±1', () => {
    const r = req({ placement: { affinities: [{ labels: { zone: 'a' }, weight: 60 }, { tier: 'edge', weight: 60 }, { deviceId: 'x', weight: -100 }] } });
    assert.equal(affinityScore(r, dev('a1', { labels: { zone: 'a' } })), 0.6);
    assert.equal(affinityScore(r, dev('a2', { labels: { zone: 'a' }, tier: 'edge' })), 1);
    assert.equal(affinityScore(r, dev('x')), -1);
    assert.equal(affinityScore(r, dev('b', { labels: { zone: 'b' } })), 0);
  });

  it('data locality hook, clamped to [0, 1]', () => {
    const r = req();
    const a = dev('a');
    const b = dev('b');
    const locality = (_r: unknown, d: CandidateDevice) => (d.id === 'b' ? 5 : 0);
    assert.ok(scoreDevice(r, b, sctx({ locality })) > scoreDevice(r, a, sctx({ locality })));
    assert.equal(scoreDevice(r, b, sctx({ locality })) - scoreDevice(r, b, sctx()), DEFAULT_WEIGHTS.locality);
  });

  it('a device an earlier attempt failed on is penalised', () => {
    const r = req({ failedDeviceIds: ['bad'] });
    assert.equal(failurePenalty(r, dev('bad')), 1);
    assert.equal(failurePenalty(r, dev('good')), 0);
    // Even a much better bin-pack fit does not beat the penalty.
    const bad = dev('bad', { alloc: { cpuMillis: 6000, memoryBytes: 24 * GiB } });
    assert.ok(scoreDevice(r, dev('good'), sctx()) > scoreDevice(r, bad, sctx()));
  });

  it('sample size: at least min, else a percentage of the cluster, never more than it', () => {
    assert.equal(sampleSize(10), 10);
    assert.equal(sampleSize(1000), 50);
    assert.equal(sampleSize(10_000), 50);
    assert.equal(sampleSize(100_000), 500);
    assert.equal(sampleSize(10_000, { min: 20, percentage: 0.1 }), 20);
    assert.equal(sampleSize(10_000, { min: 1, percentage: 50 }), 5000);
  });
});
