import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNexusError } from '../errors/catalogue.js';
import type { Device } from '../resources/device.js';
import { getJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import { SqliteStore } from '../store/sqlite/engine.js';
import { HealthController, deviceState, isWorkLost, nextHealth, resolveHealthOptions } from './health.js';
import { HeartbeatTable } from './heartbeats.js';
import { SingleLeadership } from './leadership.js';

describe('nextHealth', () => {
  const next = (current: 'ready' | 'unreachable' | 'down', now: number, seenAt: number | undefined, graceBase = 0) => nextHealth(current, now, seenAt, graceBase, 2500, 4000);
  it('ready → unreachable → down by heartbeat age; any fresh heartbeat → ready', () => {
    assert.equal(next('ready', 10_000, 9_000), 'ready');
    assert.equal(next('ready', 10_000, 7_500), 'unreachable');
    assert.equal(next('unreachable', 10_000, 6_000), 'down');
    assert.equal(next('down', 10_000, 9_999), 'ready');
    assert.equal(next('unreachable', 10_000, 9_999), 'ready');
  });
  it('a down device stays down without a heartbeat; grace keeps others as they are', () => {
    assert.equal(next('down', 10_000, undefined, 20_000), 'down');
    assert.equal(next('ready', 10_000, undefined, 9_000), 'ready');
    assert.equal(next('unreachable', 10_000, undefined, 9_000), 'unreachable', 'grace does not make a silent device ready');
    assert.equal(next('ready', 13_000, undefined, 9_000), 'down');
  });
});

it('state: health first, then the operator; work moves only after the reschedule grace', () => {
  assert.equal(deviceState('ready', 'draining'), 'draining');
  assert.equal(deviceState('down', 'maintenance'), 'down');
  assert.equal(deviceState('ready', undefined), 'ready');
  const at = Date.parse('2030-01-01T00:00:00Z');
  const d = { state: 'down' as const, health: 'down' as const, healthChangedAt: new Date(at).toISOString() };
  assert.equal(isWorkLost(d, at + 119_000, 120_000), false);
  assert.equal(isWorkLost(d, at + 120_000, 120_000), true);
  assert.equal(isWorkLost({ ...d, state: 'unreachable', health: 'unreachable' }, at + 1e9, 120_000), false);
  assert.throws(() => resolveHealthOptions({ unreachableAfterMs: 5000, downAfterMs: 4000 }), RangeError);
});

describe('HealthController', () => {
  let dir: string;
  let store: SqliteStore;
  let leadership: SingleLeadership;
  let now = 1_000_000;
  const clock = () => now;
  const options = resolveHealthOptions({ restartGraceMs: 1000, sweepMs: 3_600_000 });
  const abort = new AbortController();
  let table: HeartbeatTable;
  let hc: HealthController;

  const device = (id: string, health: Device['health']): Device => ({
    id, name: id, state: health!, health, tier: 'local', labels: {}, warnings: [], registeredAt: new Date(now).toISOString(),
    capabilities: { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 1 }, memory: { totalBytes: 1 }, gpus: [] },
  });
  const stored = async (id: string) => (await getJson<Device>(store, keys.device(id)))!;
  const sweepAt = async (t: number) => {
    now = t;
    return (await hc.sweep()).map((x) => `${x.deviceId}:${x.from}→${x.to}`);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-health-'));
    store = await SqliteStore.open({ path: join(dir, 'state.db') });
    await store.put(keys.device('a'), JSON.stringify(device('a', 'ready')));
    await store.put(keys.device('b'), JSON.stringify(device('b', 'down')));
    leadership = new SingleLeadership(store, 'test');
    await leadership.start();
    table = new HeartbeatTable({ clock });
    hc = new HealthController(store, leadership, table, clock, options);
    await hc.start(abort.signal);
  });
  after(async () => {
    abort.abort();
    await leadership.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after (re)start, silent devices keep their state for the grace, then go unreachable and down', async () => {
    const t0 = now;
    assert.deepEqual(await sweepAt(t0 + 3000), [], 'within grace + unreachable threshold');
    assert.deepEqual(await sweepAt(t0 + 1000 + 2500), ['a:ready→unreachable']);
    assert.deepEqual(await sweepAt(t0 + 1000 + 4000), ['a:unreachable→down']);
    const a = await stored('a');
    assert.equal(a.state, 'down');
    assert.equal(a.healthChangedAt, new Date(now).toISOString());
    assert.equal((await stored('b')).state, 'down', 'b was down and stays down');
  });

  it('a heartbeat brings a down device back to ready without operator action', async () => {
    table.record('a', { cpuPct: 1, memoryUsedBytes: 1 });
    table.record('b');
    const back = await sweepAt(now + 10);
    assert.deepEqual(back.sort(), ['a:down→ready', 'b:down→ready']);
    const a = await stored('a');
    assert.equal(a.state, 'ready');
    assert.equal(a.utilization, undefined, 'utilization is never written to the store');
  });

  it('an operator\'s draining shows while healthy and survives an outage', async () => {
    const a = await stored('a');
    await store.put(keys.device('a'), JSON.stringify({ ...a, operatorState: 'draining', state: 'draining' }));
    now += 2600;
    table.record('b'); // b keeps beating, a is silent
    assert.deepEqual(await sweepAt(now), ['a:ready→unreachable']);
    assert.equal((await stored('a')).state, 'unreachable');
    table.record('a');
    table.record('b');
    assert.deepEqual(await sweepAt(now + 1), ['a:unreachable→ready']);
    assert.equal((await stored('a')).state, 'draining');
  });

  it('a device that joined through another server counts as seen when its document arrives', async () => {
    now += 60_000; // long past the grace
    await store.put(keys.device('c'), JSON.stringify({ ...device('c', 'ready'), lastHeartbeatAt: new Date(now).toISOString() }));
    for (let i = 0; i < 200 && !table.get('c'); i++) await new Promise((r) => setImmediate(r));
    table.record('a');
    table.record('b');
    assert.deepEqual(await sweepAt(now + 100), [], 'not down at once for lack of a heartbeat here');
    now += 2500;
    table.record('a');
    table.record('b');
    assert.deepEqual(await sweepAt(now), ['c:ready→unreachable'], 'but silence counts from then on');
  });

  it('a deposed leader cannot write a transition', async () => {
    await leadership.stop();
    now += 10_000;
    await assert.rejects(hc.sweep(), (e) => isNexusError(e, 'NEXUS_E_NOT_LEADER'));
    assert.equal((await stored('a')).health, 'ready');
  });
});
