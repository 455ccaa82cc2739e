import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNexusError } from '../errors/catalogue.js';
import type { Device } from '../resources/device.js';
import type { Task } from '../resources/job.js';
import type { Tenant } from '../resources/tenant.js';
import { keys } from '../store/keys.js';
import { SqliteStore } from '../store/sqlite/engine.js';
import type { StateStore, TxnOp } from '../store/types.js';
import type { AllocDoc } from './allocations.js';
import { updateTaskState } from './allocations.js';
import { schedKeys } from './keys.js';
import type { UsageDoc } from './quota.js';
import { Scheduler, type PassResult, type SchedulerOptions } from './scheduler.js';
import { GiB, seededRng, simDevice, simFleet, simTask, simWorkload } from './sim.js';
import { HOLDS_RESOURCES } from './task-state.js';

const NOW = Date.UTC(2025, 0, 1, 12);
const dirs: string[] = [];

async function openStore(): Promise<SqliteStore> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-sched-'));
  dirs.push(dir);
  return SqliteStore.open({ path: join(dir, 'state.db') });
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function writeAll(store: StateStore, docs: { key: string; doc: unknown }[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 2000) {
    const success: TxnOp[] = docs.slice(i, i + 2000).map((d) => ({ type: 'put', key: d.key, value: JSON.stringify(d.doc) }));
    await store.txn({ compare: [], success });
  }
}
const putDevices = (store: StateStore, ds: Device[]) => writeAll(store, ds.map((d) => ({ key: keys.device(d.id), doc: d })));
const putTasks = (store: StateStore, ts: Task[]) => writeAll(store, ts.map((t) => ({ key: schedKeys.task(t.tenant, t.id), doc: t })));
async function putTenant(store: StateStore, name: string, quotas: Tenant['quotas']): Promise<void> {
  const t: Tenant = { name, quotas, createdAt: new Date(NOW).toISOString() };
  await store.put(keys.tenant(name), JSON.stringify(t));
}
async function list<T>(store: StateStore, prefix: string): Promise<T[]> {
  return (await store.range(prefix)).items.map((kv) => JSON.parse(kv.value) as T);
}
async function task(store: StateStore, t: Task): Promise<Task> {
  return JSON.parse((await store.get(schedKeys.task(t.tenant, t.id)))!.value) as Task;
}

function sched(store: StateStore, o: Partial<SchedulerOptions> = {}): Scheduler {
  return new Scheduler({ store, clock: () => NOW, rng: seededRng(7), ...o });
}

/** Runs passes until one changes nothing; returns the totals. */
async function drain(s: Scheduler): Promise<PassResult> {
  const total: PassResult = { placed: 0, preempted: 0, unplaceable: 0, conflicts: 0, batches: 0, pending: 0, durationMs: 0 };
  for (let i = 0; i < 200; i++) {
    const r = await s.scheduleOnce();
    for (const k of ['placed', 'preempted', 'conflicts', 'batches'] as const) total[k] += r[k];
    total.unplaceable = r.unplaceable;
    total.pending = r.pending;
    if (r.placed === 0 && r.preempted === 0 && r.conflicts === 0) return total;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('did not settle');
}

/**
 * The booking invariant, read straight from the store: every device's alloc document equals the
 * sum of the tasks assigned/running on it and fits its capacity; no GPU is held twice; every
 * tenant's usage equals the sum of its tasks.
 */
async function checkInvariants(store: StateStore): Promise<{ holding: number }> {
  const devices = new Map((await list<Device>(store, keys.devices())).map((d) => [d.id, d]));
  const allocs = new Map((await list<AllocDoc>(store, schedKeys.allocs())).map((a) => [a.deviceId, a]));
  const usages = new Map((await list<UsageDoc>(store, schedKeys.usages())).map((u) => [u.tenant, u]));
  const tasks = await list<Task>(store, schedKeys.tasks());
  const sums = new Map<string, { cpu: number; mem: number; n: number; gpus: number[] }>();
  const tenantSums = new Map<string, { cpu: number; mem: number; gpus: number; n: number }>();
  let holding = 0;
  for (const t of tasks) {
    if (!HOLDS_RESOURCES.has(t.state)) {
      if (t.state === 'pending') assert.equal(t.deviceId, undefined, `${t.id} is pending but keeps a device`);
      continue;
    }
    holding++;
    assert.ok(t.deviceId && devices.has(t.deviceId), `${t.id} is on an unknown device`);
    const s = sums.get(t.deviceId) ?? { cpu: 0, mem: 0, n: 0, gpus: [] };
    s.cpu += t.resources.cpuMillis;
    s.mem += t.resources.memoryBytes;
    s.n++;
    s.gpus.push(...(t.gpuIndices ?? []));
    assert.equal((t.gpuIndices ?? []).length, t.resources.gpus?.count ?? 0, `${t.id} got the wrong number of GPUs`);
    sums.set(t.deviceId, s);
    const u = tenantSums.get(t.tenant) ?? { cpu: 0, mem: 0, gpus: 0, n: 0 };
    u.cpu += t.resources.cpuMillis;
    u.mem += t.resources.memoryBytes;
    u.gpus += t.resources.gpus?.count ?? 0;
    u.n++;
    tenantSums.set(t.tenant, u);
  }
  for (const [id, d] of devices) {
    const a = allocs.get(id) ?? { deviceId: id, cpuMillis: 0, memoryBytes: 0, gpuIndices: [], tasks: 0 };
    const s = sums.get(id) ?? { cpu: 0, mem: 0, n: 0, gpus: [] };
    assert.ok(a.cpuMillis <= d.capabilities.cpu.logicalCores * 1000, `device ${id}: CPU over-booked (${a.cpuMillis}m)`);
    assert.ok(a.memoryBytes <= d.capabilities.memory.totalBytes, `device ${id}: memory over-booked`);
    assert.equal(new Set(s.gpus).size, s.gpus.length, `device ${id}: a GPU is held by two tasks`);
    assert.ok(s.gpus.every((g) => g < d.capabilities.gpus.length), `device ${id}: GPU index out of range`);
    assert.deepEqual([a.cpuMillis, a.memoryBytes, a.tasks, [...a.gpuIndices].sort()], [s.cpu, s.mem, s.n, [...s.gpus].sort()], `device ${id}: alloc document differs from its tasks`);
  }
  for (const [tenant, s] of tenantSums) {
    const u = usages.get(tenant);
    assert.deepEqual(u && [u.cpuMillis, u.memoryBytes, u.gpus, u.tasks], [s.cpu, s.mem, s.gpus, s.n], `tenant ${tenant}: usage differs from its tasks`);
  }
  return { holding };
}

describe('Scheduler (SQLite store)', () => {
  let store: SqliteStore;
  before(async () => {
    store = await openStore();
  });

  it('places tasks, books them in alloc/usage documents, and explains what cannot run', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [simDevice('cpu-1', { cores: 4, memGiB: 8 }), simDevice('gpu-1', { cores: 16, memGiB: 64, gpus: [{ vramGiB: 24 }, { vramGiB: 80 }] })]);
    const ts = [
      simTask('a-0', { resources: { cpuMillis: 2000, memoryBytes: 2 * GiB } }),
      simTask('a-1', { resources: { cpuMillis: 2000, memoryBytes: 2 * GiB } }),
      simTask('g-0', { resources: { cpuMillis: 1000, memoryBytes: GiB, gpus: { count: 1, minVramBytes: 20 * GiB } } }),
      simTask('g-1', { resources: { cpuMillis: 1000, memoryBytes: GiB, gpus: { count: 1, minVramBytes: 20 * GiB } } }),
      simTask('big-0', { resources: { cpuMillis: 1000, memoryBytes: GiB, gpus: { count: 1, minVramBytes: 100 * GiB } } }),
    ];
    await putTasks(store, ts);
    const s = sched(store);
    const r = await s.scheduleOnce();
    assert.equal(r.placed, 4);
    assert.equal(r.unplaceable, 1);
    assert.equal(r.batches, 1, 'one transaction for the whole pass');
    const cpuTasks = await Promise.all([task(store, ts[0]!), task(store, ts[1]!)]);
    assert.deepEqual(cpuTasks.map((t) => t.deviceId), ['cpu-1', 'cpu-1'], 'CPU tasks pack onto the CPU-only device');
    const g0 = await task(store, ts[2]!);
    const g1 = await task(store, ts[3]!);
    assert.equal(g0.state, 'assigned');
    assert.deepEqual(g0.gpuIndices, [0], 'the 24 GiB GPU first: least waste');
    assert.deepEqual(g1.gpuIndices, [1]);
    const big = await task(store, ts[4]!);
    assert.equal(big.state, 'pending');
    assert.equal(big.pendingReason, 'no device has a GPU with ≥ 100 GiB free (2 devices checked: 1 no GPU, 1 too little VRAM)');
    const alloc = JSON.parse((await store.get(schedKeys.alloc('cpu-1')))!.value) as AllocDoc;
    assert.deepEqual(alloc, { deviceId: 'cpu-1', cpuMillis: 4000, memoryBytes: 4 * GiB, gpuIndices: [], tasks: 2 });
    await checkInvariants(store);

    // The reason is written once, not on every pass.
    const before = (await store.get(schedKeys.task('acme', 'big-0')))!.modRevision;
    const again = await s.scheduleOnce();
    assert.equal(again.placed, 0);
    assert.equal((await store.get(schedKeys.task('acme', 'big-0')))!.modRevision, before);
    await s.stop();
  });

  it('updateTaskState releases the booking atomically; the freed room is used by the next pass', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [simDevice('d', { cores: 2, memGiB: 8 })]);
    const ts = [simTask('x-0', { resources: { cpuMillis: 2000 } }), simTask('x-1', { resources: { cpuMillis: 2000 } })];
    await putTasks(store, ts);
    const s = sched(store);
    assert.equal((await s.scheduleOnce()).placed, 1);
    const first = (await task(store, ts[0]!)).state === 'assigned' ? ts[0]! : ts[1]!;
    const second = first === ts[0] ? ts[1]! : ts[0]!;
    assert.match((await task(store, second)).pendingReason!, /too little CPU/);
    await updateTaskState(store, 'acme', first.id, 'running', { at: NOW });
    await checkInvariants(store);
    await updateTaskState(store, 'acme', first.id, 'succeeded', { at: NOW, fields: { exitCode: 0 } });
    await checkInvariants(store);
    await assert.rejects(updateTaskState(store, 'acme', first.id, 'running', { at: NOW }), (e) => isNexusError(e, 'NEXUS_E_CONFLICT'));
    await new Promise((r) => setImmediate(r));
    assert.equal((await s.scheduleOnce()).placed, 1);
    assert.equal((await task(store, second)).deviceId, 'd');
    await checkInvariants(store);
    await s.stop();
  });

  it('tenant quota: concurrent tasks and CPU are capped; others are not affected', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [simDevice('d', { cores: 64, memGiB: 256 })]);
    await putTenant(store, 'acme', { tasks: 2 });
    await putTenant(store, 'globex', { cpuMillis: 1500 });
    const ts = [
      ...[0, 1, 2, 3].map((i) => simTask(`a-${i}`, { tenant: 'acme', resources: { cpuMillis: 100 } })),
      ...[0, 1, 2].map((i) => simTask(`g-${i}`, { tenant: 'globex', resources: { cpuMillis: 500 } })),
      ...[0, 1, 2].map((i) => simTask(`i-${i}`, { tenant: 'initech', resources: { cpuMillis: 500 } })),
    ];
    await putTasks(store, ts);
    const s = sched(store);
    const r = await s.scheduleOnce();
    assert.equal(r.placed, 2 + 3 + 3);
    const all = await list<Task>(store, schedKeys.tasks());
    const blocked = all.filter((t) => t.state === 'pending');
    assert.deepEqual(blocked.map((t) => t.tenant).sort(), ['acme', 'acme']);
    assert.match(blocked[0]!.pendingReason!, /tenant acme quota: 2 tasks running \+ 1 > 2/);
    await checkInvariants(store);
    // Raising a quota is picked up through the watch.
    await putTenant(store, 'acme', { tasks: 3 });
    await new Promise((r) => setImmediate(r));
    assert.equal((await s.scheduleOnce()).placed, 1);
    await s.stop();
  });

  it('preemption: a task ≥ 10 points higher evicts lower tasks on one device, in the same transaction', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [simDevice('a', { cores: 4, memGiB: 16 }), simDevice('b', { cores: 4, memGiB: 16 })]);
    const low = [0, 1, 2, 3].map((i) => simTask(`low-${i}`, { priority: 10, resources: { cpuMillis: 2000 } }));
    await putTasks(store, low);
    const s = sched(store);
    assert.equal((await s.scheduleOnce()).placed, 4);
    const mid = simTask('mid-0', { priority: 15, resources: { cpuMillis: 2000 } });
    const high = simTask('high-0', { priority: 90, resources: { cpuMillis: 4000 } });
    await putTasks(store, [mid, high]);
    await new Promise((r) => setImmediate(r));
    const rev = await store.revision();
    const r = await s.scheduleOnce();
    assert.equal(r.placed, 1);
    assert.equal(r.preempted, 2);
    assert.equal(await store.revision(), rev + 1, 'eviction and assignment are one transaction');
    const h = await task(store, high);
    assert.equal(h.state, 'assigned');
    const evicted = (await list<Task>(store, schedKeys.tasks())).filter((t) => t.preemptedBy === 'high-0');
    assert.equal(evicted.length, 2);
    for (const t of evicted) {
      assert.equal(t.state, 'pending');
      assert.equal(t.deviceId, undefined);
      assert.match(t.pendingReason!, /preempted by task high-0/);
    }
    assert.ok(evicted.every((t) => t.priority === 10));
    const m = await task(store, mid);
    assert.equal(m.state, 'pending', 'priority 15 is only 5 above 10: no eviction');
    assert.match(m.pendingReason!, /too little CPU/);
    await checkInvariants(store);
    await s.stop();
  });

  it('profile rules through the store: time window on an injected clock, not on battery', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [
      simDevice('office', { profile: { windows: [{ start: '09:00', end: '17:00' }] } }),
      simDevice('laptop', { onBattery: true, profile: { notOnBattery: true } }),
    ]);
    await putTasks(store, [simTask('t-0')]);
    let now = Date.UTC(2025, 0, 1, 20);
    const s = sched(store, { clock: () => now });
    await s.scheduleOnce();
    assert.equal((await task(store, simTask('t-0'))).pendingReason, 'no device has 1000m CPU and 1 GiB memory free (2 devices checked: 1 on battery, 1 outside its time window)');
    now = Date.UTC(2025, 0, 2, 10);
    assert.equal((await s.scheduleOnce()).placed, 1);
    assert.equal((await task(store, simTask('t-0'))).deviceId, 'office');
    await s.stop();
  });

  it('named device profiles from the store: reservations, labels, tier, windows in the profile time zone; missing = no work', async () => {
    await store.deletePrefix('/nexus/');
    const profile = (name: string, extra: Record<string, unknown>) => ({
      name, labels: {}, reservedCpuMillis: 0, reservedMemoryBytes: 0, notOnBattery: false, windows: [], createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z', ...extra,
    });
    // 12:00 UTC is 21:00 in Tokyo: inside a 20:00–06:00 Tokyo window, outside it in UTC.
    await store.put(schedKeys.profiles() + 'night', JSON.stringify(profile('night', { windows: [{ start: '20:00', end: '06:00' }], timeZone: 'Asia/Tokyo', labels: { pool: 'spare', zone: 'profile' }, tier: 'edge', reservedCpuMillis: 3000 })));
    const withProfile = (id: string, name: string, labels: Record<string, string> = {}) => ({ ...simDevice(id, { cores: 4, labels }), profile: name });
    await putDevices(store, [withProfile('owned', 'night', { zone: 'own' }), withProfile('orphan', 'gone')]);
    const fits = simTask('p-0', { resources: { cpuMillis: 1000 }, placement: { constraints: { labels: { pool: 'spare', zone: 'own' }, tier: ['edge'] } } });
    const tooBig = simTask('p-1', { resources: { cpuMillis: 1001 }, placement: { constraints: { labels: { pool: 'spare' } } } });
    await putTasks(store, [fits, tooBig]);
    const s = sched(store);
    assert.equal((await s.scheduleOnce()).placed, 1);
    assert.equal((await task(store, fits)).deviceId, 'owned', 'profile labels and tier apply; the device keeps its own zone');
    assert.equal((await task(store, tooBig)).pendingReason, 'no device has 1001m CPU and 1 GiB memory free (2 devices checked: 1 its profile is missing, 1 too little CPU)');
    // The profile changes (window now closed at 21:00 Tokyo): picked up through the watch.
    await store.put(schedKeys.profiles() + 'night', JSON.stringify(profile('night', { windows: [{ start: '22:00', end: '06:00' }], timeZone: 'Asia/Tokyo', labels: { pool: 'spare' } })));
    await putTasks(store, [simTask('p-2', { resources: { cpuMillis: 100 }, placement: { constraints: { labels: { pool: 'spare' } } } })]);
    await new Promise((r) => setImmediate(r));
    await s.scheduleOnce();
    assert.match((await task(store, simTask('p-2'))).pendingReason!, /1 outside its time window/);
    await s.stop();
  });

  it('maxTxnOps (etcd allows 128 ops per transaction): batches close before the limit', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, Array.from({ length: 30 }, (_, i) => simDevice(`d${i}`, { cores: 2 })));
    await putTasks(store, Array.from({ length: 50 }, (_, i) => simTask(`m-${i}`, { tenant: ['acme', 'globex'][i % 2]!, resources: { cpuMillis: 1000 }, placement: { spread: true } })));
    let most = 0;
    let txns = 0;
    const counting = new Proxy(store, {
      get(target, prop) {
        if (prop === 'txn') {
          return (req: Parameters<StateStore['txn']>[0]) => {
            most = Math.max(most, req.compare.length, req.success.length);
            txns++;
            return target.txn(req);
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const s = sched(counting, { maxTxnOps: 40 });
    const r = await s.scheduleOnce();
    assert.equal(r.placed, 50);
    assert.ok(most <= 40, `largest transaction had ${most} ops`);
    assert.ok(txns >= 3, `${txns} transactions`);
    await checkInvariants(store);
    await s.stop();
    const tiny = sched(store, { maxTxnOps: 10 });
    await assert.rejects(tiny.scheduleOnce(), (e) => isNexusError(e, 'NEXUS_E_CONFIG'));
    await tiny.stop();
  });

  it('the leadership guard: a deposed scheduler writes nothing and gets NEXUS_E_NOT_LEADER', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [simDevice('d')]);
    const won = await store.put(keys.leader(), '{"serverId":"a"}');
    await putTasks(store, [simTask('t-0')]);
    const guard = () => [{ key: keys.leader(), target: 'createRevision' as const, op: '=' as const, value: won.revision }];
    await store.delete(keys.leader());
    await store.put(keys.leader(), '{"serverId":"b"}');
    const s = sched(store, { guard });
    const rev = await store.revision();
    await assert.rejects(s.scheduleOnce(), (e) => isNexusError(e, 'NEXUS_E_NOT_LEADER'));
    assert.equal(await store.revision(), rev);
    assert.equal((await task(store, simTask('t-0'))).state, 'pending');
    await s.stop();
  });

  it('start(): reacts to new tasks and device changes through its watches', async () => {
    await store.deletePrefix('/nexus/');
    await putDevices(store, [simDevice('d1', { cores: 2 })]);
    const ac = new AbortController();
    const s = sched(store, { intervalMs: 60_000, debounceMs: 1 });
    await s.start(ac.signal);
    const waitFor = async (t: Task, pred: (t: Task) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const cur = await task(store, t);
        if (pred(cur)) return cur;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`timed out waiting on ${t.id}`);
    };
    const t0 = simTask('w-0', { resources: { cpuMillis: 2000 } });
    await putTasks(store, [t0]);
    assert.equal((await waitFor(t0, (t) => t.state === 'assigned')).deviceId, 'd1');
    // A second task does not fit until a second device registers.
    const t1 = simTask('w-1', { resources: { cpuMillis: 2000 } });
    await putTasks(store, [t1]);
    await waitFor(t1, (t) => t.pendingReason !== undefined);
    await putDevices(store, [simDevice('d2', { cores: 2, state: 'draining' })]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await task(store, t1)).state, 'pending', 'a draining device gets nothing');
    await putDevices(store, [simDevice('d2', { cores: 2 })]);
    assert.equal((await waitFor(t1, (t) => t.state === 'assigned')).deviceId, 'd2');
    ac.abort();
    await s.stop();
    await checkInvariants(store);
  });
});

/**
 * The store as a remote engine (etcd) would behave: every transaction reaches it a little later,
 * so two schedulers plan on the same state and then both commit.
 */
function laggy(store: StateStore, rng: () => number): StateStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'txn') {
        return async (req: Parameters<StateStore['txn']>[0]) => {
          await new Promise((r) => setTimeout(r, rng() * 3));
          return target.txn(req);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('two schedulers racing on one store', () => {
  async function setup(n: number) {
    const store = await openStore();
    const rng = seededRng(42);
    await putDevices(store, simFleet(60, rng));
    const tasks = simWorkload(n, rng);
    // Make capacity the bottleneck and add GPU contention.
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i]!;
      t.resources = i % 10 === 0
        ? { cpuMillis: 1000, memoryBytes: 2 * GiB, gpus: { count: 1 + (i % 3 === 0 ? 1 : 0) } }
        : { ...t.resources, cpuMillis: t.resources.cpuMillis * 4 };
    }
    await putTasks(store, tasks);
    return store;
  }

  async function race(t: { diagnostic(m: string): void }, store: SqliteStore, oa: Partial<SchedulerOptions>, ob: Partial<SchedulerOptions>) {
    const a = sched(laggy(store, seededRng(3)), { rng: seededRng(1), batchSize: 100, ...oa });
    const b = sched(laggy(store, seededRng(4)), { rng: seededRng(2), batchSize: 100, ...ob });
    const [ra, rb] = await Promise.all([drain(a), drain(b)]);
    // As their watch loops would: run again until neither has anything left (one scheduler's
    // preemptions hand the other work).
    for (let i = 0; i < 20; i++) {
      const [xa, xb] = await Promise.all([drain(a), drain(b)]);
      for (const k of ['placed', 'preempted', 'conflicts'] as const) {
        ra[k] += xa[k];
        rb[k] += xb[k];
      }
      if (xa.placed + xb.placed + xa.preempted + xb.preempted === 0) break;
    }
    t.diagnostic(`a: ${JSON.stringify(ra)}`);
    t.diagnostic(`b: ${JSON.stringify(rb)}`);
    const { holding } = await checkInvariants(store);
    assert.equal(holding, ra.placed + rb.placed - ra.preempted - rb.preempted, 'every placement not since evicted is one assigned task');
    assert.ok(ra.conflicts + rb.conflicts > 0, 'the race was real: some commits were refused');
    // Nothing placeable is left behind: a fresh pass of an all-tasks scheduler places nothing more.
    const c = sched(store);
    assert.equal((await drain(c)).placed, 0);
    await checkInvariants(store);
    const pending = (await list<Task>(store, schedKeys.tasks())).filter((t) => t.state === 'pending');
    assert.ok(pending.length > 0 && pending.every((t) => t.pendingReason), 'whatever is left says why');
    for (const s of [a, b, c]) await s.stop();
    await store.close();
    return { ra, rb };
  }

  it('same queue: never double-book a device (CPU, memory or GPU) nor assign a task twice', async (t) => {
    await race(t, await setup(2500), {}, {});
  });

  it('split queues, shared devices (Omega-style): both place work, the alloc compares keep every device within capacity', async (t) => {
    const { ra, rb } = await race(t, await setup(2500), { taskFilter: (t) => t.tenant !== 'initech' }, { taskFilter: (t) => t.tenant === 'initech' });
    assert.ok(ra.placed > 0 && rb.placed > 0, `both placed work (${ra.placed}, ${rb.placed})`);
    assert.ok(ra.conflicts > 0 || rb.conflicts > 0);
  });
});
