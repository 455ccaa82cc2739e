import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { keys } from '../../store/keys.js';
import { runCli } from '../../testing/cli.js';
import { startTestServer, type TestServer } from '../../testing/server.js';

describe('profiles API', () => {
  let t: TestServer;
  let viewer: string;
  let agent: string;
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const inject = (opts: InjectOptions) => t.server.app.inject(opts);
  const admin = () => as(t.adminToken);
  const putDevice = (id: string, extra: object = {}) => t.server.store.put(keys.device(id), JSON.stringify({
    id, name: id, state: 'ready', tier: 'local', labels: { zone: 'desk' }, warnings: [], registeredAt: new Date().toISOString(),
    capabilities: { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 4 }, memory: { totalBytes: 8 * 2 ** 30 }, gpus: [] }, ...extra,
  }));

  before(async () => {
    t = await startTestServer();
    viewer = (await inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'viewer' } })).json().token;
    agent = (await inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'agent' } })).json().token;
  });
  after(async () => t.close());

  it('create fills defaults; get and list; a duplicate is 409', async () => {
    const c = await inject({ method: 'POST', url: '/v1/profiles', headers: admin(), payload: { name: 'minimal' } });
    assert.equal(c.statusCode, 201);
    const p = c.json();
    assert.deepEqual({ ...p, createdAt: 'x', updatedAt: 'x' }, {
      name: 'minimal', labels: {}, reservedCpuMillis: 0, reservedMemoryBytes: 0, notOnBattery: false, windows: [], createdAt: 'x', updatedAt: 'x',
    });
    const full = {
      name: 'nights', labels: { pool: 'night' }, reservedCpuMillis: 1000, reservedMemoryBytes: 2 ** 30, notOnBattery: true,
      windows: [{ days: ['mon', 'tue'], start: '22:00', end: '06:00' }, { start: '12:00', end: '13:00' }], timeZone: 'Europe/Paris', maxTasks: 2, tier: 'edge',
    };
    assert.equal((await inject({ method: 'POST', url: '/v1/profiles', headers: admin(), payload: full })).statusCode, 201);
    const got = await inject({ method: 'GET', url: '/v1/profiles/nights', headers: as(viewer) });
    assert.equal(got.statusCode, 200);
    assert.deepEqual({ ...(got.json() as object), createdAt: undefined, updatedAt: undefined }, { ...full, createdAt: undefined, updatedAt: undefined });
    const list = await inject({ method: 'GET', url: '/v1/profiles', headers: as(agent) });
    assert.deepEqual(list.json().items.map((x: { name: string }) => x.name), ['minimal', 'nights']);
    const dup = await inject({ method: 'POST', url: '/v1/profiles', headers: admin(), payload: { name: 'nights' } });
    assert.deepEqual([dup.statusCode, dup.json().error.code], [409, 'NEXUS_E_ALREADY_EXISTS']);
    const missing = await inject({ method: 'GET', url: '/v1/profiles/nope', headers: admin() });
    assert.deepEqual([missing.statusCode, missing.json().error.code], [404, 'NEXUS_E_NOT_FOUND']);
  });

  it('PUT replaces the whole profile and keeps createdAt; PUT of a missing profile is 404', async () => {
    const before = (await inject({ method: 'GET', url: '/v1/profiles/nights', headers: admin() })).json();
    const r = await inject({ method: 'PUT', url: '/v1/profiles/nights', headers: admin(), payload: { maxTasks: 4, windows: [{ start: '20:00', end: '08:00' }] } });
    assert.equal(r.statusCode, 200);
    const p = r.json();
    assert.equal(p.maxTasks, 4);
    assert.deepEqual(p.labels, {}, 'omitted fields take their defaults');
    assert.equal(p.notOnBattery, false);
    assert.equal(p.timeZone, undefined);
    assert.equal(p.createdAt, before.createdAt);
    const gone = await inject({ method: 'PUT', url: '/v1/profiles/ghost', headers: admin(), payload: {} });
    assert.equal(gone.statusCode, 404);
    const withName = await inject({ method: 'PUT', url: '/v1/profiles/nights', headers: admin(), payload: { name: 'other' } });
    assert.deepEqual([withName.statusCode, withName.json().error.code, withName.json().error.field], [400, 'NEXUS_E_UNKNOWN_FIELD', 'name']);
  });

  it('rejects bad windows, days, time zones and names, naming the field', async () => {
    const bad = async (payload: object, field: string) => {
      const r = await inject({ method: 'POST', url: '/v1/profiles', headers: admin(), payload: { name: 'bad', ...payload } });
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
      assert.equal(r.json().error.field, field, JSON.stringify(r.json()));
    };
    await bad({ windows: [{ start: '25:00', end: '06:00' }] }, 'windows.0.start');
    await bad({ windows: [{ start: '24:00', end: '06:00' }] }, 'windows.0.start');
    await bad({ windows: [{ start: '9:00', end: '06:00' }] }, 'windows.0.start');
    await bad({ windows: [{ days: ['monday'], start: '01:00', end: '06:00' }] }, 'windows.0.days.0');
    await bad({ windows: [{ days: ['mon', 'mon'], start: '01:00', end: '06:00' }] }, 'windows.0.days');
    await bad({ timeZone: 'Mars/Olympus' }, 'timeZone');
    await bad({ reservedCpuMillis: -1 }, 'reservedCpuMillis');
    await bad({ tier: 'space' }, 'tier');
    const name = await inject({ method: 'POST', url: '/v1/profiles', headers: admin(), payload: { name: 'Not_A_Name' } });
    assert.equal(name.json().error.field, 'name');
  });

  it('only admins write; viewers and agents read', async () => {
    for (const token of [viewer, agent]) {
      const w = await inject({ method: 'POST', url: '/v1/profiles', headers: as(token), payload: { name: 'sneaky' } });
      assert.deepEqual([w.statusCode, w.json().error.code], [403, 'NEXUS_E_FORBIDDEN']);
      assert.equal((await inject({ method: 'DELETE', url: '/v1/profiles/minimal', headers: as(token) })).statusCode, 403);
      assert.equal((await inject({ method: 'PUT', url: '/v1/profiles/minimal', headers: as(token), payload: {} })).statusCode, 403);
    }
  });

  it('delete refuses while a device uses the profile; the offer follows the profile', async () => {
    await putDevice('dev-p1', { profile: 'minimal' });
    const inUse = await inject({ method: 'DELETE', url: '/v1/profiles/minimal', headers: admin() });
    assert.deepEqual([inUse.statusCode, inUse.json().error.code], [409, 'NEXUS_E_IN_USE']);
    assert.match(inUse.json().error.message, /dev-p1/);

    await inject({ method: 'PUT', url: '/v1/profiles/minimal', headers: admin(), payload: { reservedCpuMillis: 1000, labels: { pool: 'p' }, maxTasks: 1 } });
    const device = JSON.parse((await t.server.store.get(keys.device('dev-p1')))!.value);
    const offer = await t.server.ctx.profiles.offer(device);
    assert.deepEqual({ ...offer }, { deviceId: 'dev-p1', profile: 'minimal', tier: 'local', cpuMillis: 3000, memoryBytes: 8 * 2 ** 30, labels: { pool: 'p', zone: 'desk' }, allowed: true, reasons: [], maxTasks: 1 });
    const dangling = await t.server.ctx.profiles.offer({ ...device, profile: 'deleted-one' });
    assert.equal(dangling.allowed, false);

    await putDevice('dev-p1', { profile: null });
    assert.equal((await inject({ method: 'DELETE', url: '/v1/profiles/minimal', headers: admin() })).statusCode, 204);
    assert.equal((await inject({ method: 'DELETE', url: '/v1/profiles/minimal', headers: admin() })).statusCode, 404);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await inject({ method: 'GET', url: '/v1/openapi.json', headers: admin() })).json();
    assert.ok(doc.paths['/v1/profiles'].post);
    assert.ok(doc.paths['/v1/profiles/{name}'].put);
  });

  it('CLI: profiles create / update / show / list / delete', async () => {
    const env = { NEXUS_ADDR: t.server.url, NEXUS_TOKEN: t.adminToken, NEXUS_CONFIG: '', XDG_CONFIG_HOME: join(t.dataDir, 'cfg') };
    const c = await runCli(['profiles', 'create', 'cli-p', '--label', 'a=1', '--label', 'b=2', '--reserved-cpu-millis', '500', '--reserved-memory', '1.5GiB',
      '--not-on-battery', '--window', 'mon-fri 18:00-08:00', '--window', 'sat,sun 00:00-24:00', '--time-zone', 'UTC', '--max-tasks', '3', '--tier', 'edge', '--json'], env);
    assert.equal(c.code, 0, c.stderr);
    const created = JSON.parse(c.stdout);
    assert.equal(created.reservedMemoryBytes, 1.5 * 2 ** 30);
    assert.deepEqual(created.windows, [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '18:00', end: '08:00' }, { days: ['sat', 'sun'], start: '00:00', end: '24:00' }]);
    const u = await runCli(['profiles', 'update', 'cli-p', '--remove-label', 'a', '--allow-battery', '--max-tasks', 'none', '--tier', 'none', '--json'], env);
    assert.equal(u.code, 0, u.stderr);
    const updated = JSON.parse(u.stdout);
    assert.deepEqual(updated.labels, { b: '2' });
    assert.equal(updated.notOnBattery, false);
    assert.equal(updated.maxTasks, undefined);
    assert.equal(updated.tier, undefined);
    assert.equal(updated.reservedCpuMillis, 500, 'fields not named keep their values');
    assert.equal(updated.windows.length, 2);
    const show = await runCli(['profiles', 'show', 'cli-p'], env);
    assert.match(show.stdout, /windows\s+mon,tue,wed,thu,fri 18:00-08:00; sat,sun 00:00-24:00/);
    const list = await runCli(['profiles', 'list'], env);
    assert.match(list.stdout, /^NAME\s+TIER/);
    assert.match(list.stdout, /cli-p/);
    const badWindow = await runCli(['profiles', 'create', 'x', '--window', 'noon-ish'], env);
    assert.notEqual(badWindow.code, 0);
    assert.match(badWindow.stderr, /HH:MM-HH:MM/);
    const d = await runCli(['profiles', 'delete', 'cli-p'], env);
    assert.equal(d.code, 0, d.stderr);
  });
});
