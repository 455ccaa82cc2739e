import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { SYSTEM, TokenService } from '../tenancy/tokens.js';
import { isNexusError } from '../errors/catalogue.js';
import { startTestServer, type TestServer } from '../testing/server.js';

const caps = { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 4 }, memory: { totalBytes: 8e9 }, gpus: [] };

describe('devices API: join, heartbeat, operator changes, revoke', () => {
  let t: TestServer;
  let joinToken: string;
  let cred: { token: string; tokenId: string; device: { id: string } };
  const inject = (opts: InjectOptions) => t.server.app.inject(opts);
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const admin = () => as(t.adminToken);

  before(async () => {
    t = await startTestServer();
    joinToken = (await inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'agent' } })).json().token;
  });
  after(async () => t.close());

  it('a plain-HTTP server hands out plain agent tokens and has no CA to fetch (404, not 401)', async () => {
    assert.match(joinToken, /^nxt_/);
    const ca = await inject({ method: 'GET', url: '/v1/join/ca' });
    assert.equal(ca.statusCode, 404);
    assert.equal(ca.json().error.code, 'NEXUS_E_NOT_FOUND');
  });

  it('joining gives a server-chosen device id and a credential bound to it', async () => {
    const r = await inject({ method: 'POST', url: '/v1/join', headers: as(joinToken), payload: { name: 'pi', capabilities: caps, labels: { zone: 'a' } } });
    assert.equal(r.statusCode, 201, r.body);
    cred = r.json();
    assert.match(cred.device.id, /^dev-/);
    assert.match(cred.token, /^nxt_/);
    const tokens = (await inject({ method: 'GET', url: '/v1/tokens', headers: admin() })).json().items as { id: string; deviceId?: string }[];
    assert.equal(tokens.find((x) => x.id === cred.tokenId)?.deviceId, cred.device.id);
    const again = await inject({ method: 'POST', url: '/v1/join', headers: as(cred.token), payload: { name: 'x', capabilities: caps } });
    assert.equal(again.json().error.code, 'NEXUS_E_FORBIDDEN', 'a device credential cannot join another device');
  });

  it('a credential heartbeats for its own device only; live utilization shows on reads', async () => {
    const id = cred.device.id;
    const hb = await inject({ method: 'POST', url: `/v1/devices/${id}/heartbeat`, headers: as(cred.token), payload: { utilization: { cpuPct: 12.5, memoryUsedBytes: 1e9 } } });
    assert.equal(hb.statusCode, 200, hb.body);
    assert.equal(hb.json().intervalMs, 1000);
    const other = await inject({ method: 'POST', url: '/v1/devices/dev-other/heartbeat', headers: as(cred.token), payload: {} });
    assert.equal(other.json().error.code, 'NEXUS_E_FORBIDDEN');
    const bad = await inject({ method: 'POST', url: `/v1/devices/${id}/heartbeat`, headers: as(cred.token), payload: { utilization: { cpuPct: 101, memoryUsedBytes: 1 } } });
    assert.equal(bad.json().error.field, 'utilization.cpuPct');
    const d = (await inject({ method: 'GET', url: `/v1/devices/${id}`, headers: admin() })).json();
    assert.equal(d.utilization.cpuPct, 12.5);
    assert.equal(d.health, 'ready');
    assert.ok(d.lastHeartbeatAt);
    const byJoinToken = await inject({ method: 'POST', url: '/v1/devices', headers: as(joinToken), payload: { id, name: 'pi', capabilities: caps } });
    assert.equal(byJoinToken.json().error.code, 'NEXUS_E_FORBIDDEN', 'a join token cannot register devices directly');
  });

  it('operators drain, put in maintenance, label; re-registration keeps all of it', async () => {
    const id = cred.device.id;
    const patch = (payload: object) => inject({ method: 'PATCH', url: `/v1/devices/${id}`, headers: admin(), payload });
    assert.equal((await patch({ operatorState: 'draining' })).json().state, 'draining');
    const labelled = (await patch({ labels: { zone: null, gpu: 'none' }, tier: 'edge' })).json();
    assert.deepEqual(labelled.labels, { gpu: 'none' });
    assert.equal(labelled.tier, 'edge');
    const reg = await inject({ method: 'POST', url: '/v1/devices', headers: as(cred.token), payload: { id, name: 'pi', capabilities: caps } });
    assert.equal(reg.statusCode, 200, reg.body);
    assert.equal(reg.json().state, 'draining');
    assert.deepEqual(reg.json().labels, { gpu: 'none' });
    assert.equal((await patch({ operatorState: 'maintenance' })).json().state, 'maintenance');
    assert.equal((await patch({ operatorState: 'none' })).json().state, 'ready');
    assert.equal((await patch({ operatorState: 'asleep' })).json().error.code, 'NEXUS_E_VALIDATION');
    const byAgent = await inject({ method: 'PATCH', url: `/v1/devices/${id}`, headers: as(cred.token), payload: { operatorState: 'none' } });
    assert.equal(byAgent.json().error.code, 'NEXUS_E_FORBIDDEN');
  });

  it('a revoked device is refused with NEXUS_E_DEVICE_REVOKED', async () => {
    const id = cred.device.id;
    const r = await inject({ method: 'POST', url: `/v1/devices/${id}/revoke`, headers: admin(), payload: {} });
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(r.json().revokedAt);
    const hb = await inject({ method: 'POST', url: `/v1/devices/${id}/heartbeat`, headers: as(cred.token), payload: {} });
    assert.equal(hb.statusCode, 403);
    assert.equal(hb.json().error.code, 'NEXUS_E_DEVICE_REVOKED');
  });

  it('join tokens: another cluster\'s pin, expiry and revocation are refused', async () => {
    let now = Date.now();
    const pin = 'ab'.repeat(32);
    const tokens = new TokenService(t.server.store, t.server.ctx.tenants, () => now, { joinPin: pin });
    const { token, item } = await tokens.create(SYSTEM, { role: 'agent', ttlSeconds: 60 });
    assert.ok(token.startsWith(`NX1${pin}::${item.id}.`));
    assert.equal((await tokens.verify(token)).role, 'agent');
    const foreign = token.replace(/^NX1ab/, 'NX1cd');
    await assert.rejects(tokens.verify(foreign), (e) => isNexusError(e, 'NEXUS_E_BAD_TOKEN') && /another cluster/.test(e.message));
    now += 61_000;
    await assert.rejects(tokens.verify(token), (e) => isNexusError(e, 'NEXUS_E_BAD_TOKEN') && /expired/.test(e.message));
    const member = (await tokens.create(SYSTEM, { role: 'member' })).token;
    assert.match(member, /^nxt_/, 'only agent tokens are join tokens');
    const joinTokenId = /^nxt_([^.]+)\./.exec(joinToken)![1]!;
    const revoked = await inject({ method: 'DELETE', url: `/v1/tokens/${joinTokenId}`, headers: admin() });
    assert.equal(revoked.statusCode, 200);
    const r = await inject({ method: 'POST', url: '/v1/join', headers: as(joinToken), payload: { name: 'late', capabilities: caps } });
    assert.equal(r.json().error.code, 'NEXUS_E_BAD_TOKEN');
  });
});
