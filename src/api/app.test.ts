import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { startTestServer, type TestServer } from '../testing/server.js';

describe('API', () => {
  let t: TestServer;
  const auth = () => ({ authorization: `Bearer ${t.adminToken}` });
  const inject = (opts: InjectOptions) => t.server.app.inject(opts);

  before(async () => {
    t = await startTestServer();
  });
  after(async () => t.close());

  it('healthz and readyz need no token', async () => {
    const h = await inject({ method: 'GET', url: '/healthz' });
    assert.equal(h.statusCode, 200);
    const r = await inject({ method: 'GET', url: '/readyz' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().status, 'ready');
  });

  it('writes the admin token file with mode 0600', () => {
    const mode = statSync(join(t.dataDir, 'admin-token')).mode & 0o777;
    assert.equal(mode, 0o600);
    assert.match(t.adminToken, /^nxt_tk[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
  });

  it('/v1 without a token is 401 NEXUS_E_UNAUTHENTICATED', async () => {
    const r = await inject({ method: 'GET', url: '/v1/devices' });
    assert.equal(r.statusCode, 401);
    assert.equal(r.json().error.code, 'NEXUS_E_UNAUTHENTICATED');
  });

  it('a wrong token and a malformed header are 401 NEXUS_E_BAD_TOKEN', async () => {
    const wrong = t.adminToken.slice(0, -4) + 'AAAA';
    const r = await inject({ method: 'GET', url: '/v1/devices', headers: { authorization: `Bearer ${wrong}` } });
    assert.equal(r.statusCode, 401);
    assert.equal(r.json().error.code, 'NEXUS_E_BAD_TOKEN');
    const r2 = await inject({ method: 'GET', url: '/v1/devices', headers: { authorization: 'Basic abc' } });
    assert.equal(r2.json().error.code, 'NEXUS_E_BAD_TOKEN');
  });

  it('malformed JSON is 400 NEXUS_E_BAD_JSON', async () => {
    const r = await inject({ method: 'POST', url: '/v1/tenants', headers: { ...auth(), 'content-type': 'application/json' }, payload: '{"name": "x",' });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'NEXUS_E_BAD_JSON');
  });

  it('a wrong type is 400 NEXUS_E_VALIDATION naming the field', async () => {
    const r = await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: { name: 42 } });
    assert.equal(r.statusCode, 400);
    assert.deepEqual([r.json().error.code, r.json().error.field], ['NEXUS_E_VALIDATION', 'name']);
    const nested = await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: { name: 'ok', quotas: { gpus: 'two' } } });
    assert.equal(nested.json().error.field, 'quotas.gpus');
    const role = await inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role: 'superuser' } });
    assert.equal(role.json().error.field, 'role');
    assert.match(role.json().error.message, /must be one of admin, tenant-admin/);
  });

  it('a missing required field names it', async () => {
    const r = await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: {} });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.field, 'name');
  });

  it('an unknown field is 400 NEXUS_E_UNKNOWN_FIELD', async () => {
    const r = await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: { name: 'acme', colour: 'red' } });
    assert.equal(r.statusCode, 400);
    assert.deepEqual(r.json().error, { code: 'NEXUS_E_UNKNOWN_FIELD', message: r.json().error.message, field: 'colour' });
  });

  it('an oversized body is 413 NEXUS_E_BODY_TOO_LARGE', async () => {
    const r = await inject({ method: 'POST', url: '/v1/tenants', headers: { ...auth(), 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'big', displayName: 'x'.repeat(2 * 1024 * 1024) }) });
    assert.equal(r.statusCode, 413);
    assert.equal(r.json().error.code, 'NEXUS_E_BODY_TOO_LARGE');
  });

  it('an unknown route is 404 with a code', async () => {
    const r = await inject({ method: 'GET', url: '/v1/nothing-here', headers: auth() });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.code, 'NEXUS_E_ROUTE_NOT_FOUND');
  });

  it('serves an OpenAPI 3 document generated from the route schemas', async () => {
    const r = await inject({ method: 'GET', url: '/v1/openapi.json', headers: auth() });
    assert.equal(r.statusCode, 200);
    const doc = r.json();
    assert.match(doc.openapi, /^3\./);
    const create = doc.paths['/v1/tenants'].post;
    const schema = create.requestBody.content['application/json'].schema;
    assert.equal(schema.additionalProperties, false);
    assert.ok(schema.properties.name.pattern, 'the same TypeBox schema that validates is documented');
    assert.ok(doc.paths['/v1/devices'].get);
  });

  it('tenants: create, get, list, conflict, delete', async () => {
    const c = await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: { name: 'acme', quotas: { gpus: 2 } } });
    assert.equal(c.statusCode, 201);
    assert.equal(c.json().quotas.gpus, 2);
    const dup = await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: { name: 'acme' } });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().error.code, 'NEXUS_E_ALREADY_EXISTS');
    const list = await inject({ method: 'GET', url: '/v1/tenants', headers: auth() });
    assert.deepEqual(list.json().items.map((x: { name: string }) => x.name).sort(), ['acme', 'default']);
    const del = await inject({ method: 'DELETE', url: '/v1/tenants/acme', headers: auth() });
    assert.equal(del.statusCode, 204);
    const gone = await inject({ method: 'GET', url: '/v1/tenants/acme', headers: auth() });
    assert.equal(gone.statusCode, 404);
    const def = await inject({ method: 'DELETE', url: '/v1/tenants/default', headers: auth() });
    assert.equal(def.json().error.code, 'NEXUS_E_IN_USE');
  });

  it('tokens: nobody mints a stronger token or one outside their tenant; revoked tokens stop working', async () => {
    await inject({ method: 'POST', url: '/v1/tenants', headers: auth(), payload: { name: 'team' } });
    const mk = async (by: string, body: object) => inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer ${by}` }, payload: body });
    const ta = await mk(t.adminToken, { role: 'tenant-admin', tenant: 'team' });
    assert.equal(ta.statusCode, 201);
    const taTok = ta.json().token as string;
    const member = await mk(taTok, { role: 'member' });
    assert.equal(member.statusCode, 201);
    assert.equal(member.json().item.tenant, 'team', 'defaults to the caller\'s tenant');
    const memberTok = member.json().token as string;
    assert.equal((await mk(memberTok, { role: 'tenant-admin' })).json().error.code, 'NEXUS_E_ROLE_ESCALATION');
    assert.equal((await mk(taTok, { role: 'admin' })).json().error.code, 'NEXUS_E_ROLE_ESCALATION');
    assert.equal((await mk(taTok, { role: 'agent' })).json().error.code, 'NEXUS_E_ROLE_ESCALATION');
    assert.equal((await mk(taTok, { role: 'member', tenant: 'default' })).json().error.code, 'NEXUS_E_TENANT_SCOPE');
    const viewer = await mk(memberTok, { role: 'viewer' });
    assert.equal(viewer.statusCode, 201);
    const viewerTok = viewer.json().token as string;
    const vmk = await mk(viewerTok, { role: 'viewer' });
    assert.equal(vmk.statusCode, 403);
    assert.equal(vmk.json().error.code, 'NEXUS_E_FORBIDDEN');
    // The member sees only its tenant's tokens; secrets never appear in listings.
    const list = await inject({ method: 'GET', url: '/v1/tokens', headers: { authorization: `Bearer ${memberTok}` } });
    const items = list.json().items as { tenant: string; secretHash?: string }[];
    assert.ok(items.length >= 3);
    assert.ok(items.every((i) => i.tenant === 'team' && i.secretHash === undefined));
    // Revoke, then the token is refused.
    const rev = await inject({ method: 'DELETE', url: `/v1/tokens/${viewer.json().item.id}`, headers: { authorization: `Bearer ${taTok}` } });
    assert.equal(rev.statusCode, 200);
    assert.ok(rev.json().revokedAt);
    const after = await inject({ method: 'GET', url: '/v1/devices', headers: { authorization: `Bearer ${viewerTok}` } });
    assert.equal(after.statusCode, 401);
    assert.match(after.json().error.message, /revoked/);
    // A tenant with active tokens cannot be deleted.
    const del = await inject({ method: 'DELETE', url: '/v1/tenants/team', headers: auth() });
    assert.equal(del.json().error.code, 'NEXUS_E_IN_USE');
  });

  it('expired tokens are refused', async () => {
    const c = await inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role: 'viewer', ttlSeconds: 1 } });
    const tok = c.json().token as string;
    assert.equal((await inject({ method: 'GET', url: '/v1/devices', headers: { authorization: `Bearer ${tok}` } })).statusCode, 200);
    await new Promise((r) => setTimeout(r, 1100));
    const r = await inject({ method: 'GET', url: '/v1/devices', headers: { authorization: `Bearer ${tok}` } });
    assert.equal(r.statusCode, 401);
    assert.match(r.json().error.message, /expired/);
  });

  it('devices: an agent (join) token joins a device, whose credential registers it; it then lists with its capabilities', async () => {
    const c = await inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role: 'agent' } });
    const joinTok = c.json().token as string;
    const capabilities = { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 8 }, memory: { totalBytes: 16 * 2 ** 30 }, gpus: [] };
    const joined = await inject({ method: 'POST', url: '/v1/join', headers: { authorization: `Bearer ${joinTok}` }, payload: { name: 'box', capabilities } });
    assert.equal(joined.statusCode, 201);
    const agentTok = joined.json().token as string;
    const body = { id: joined.json().device.id as string, name: 'box', capabilities };
    const reg = await inject({ method: 'POST', url: '/v1/devices', headers: { authorization: `Bearer ${agentTok}` }, payload: body });
    assert.equal(reg.statusCode, 200);
    assert.equal(reg.json().state, 'ready');
    const list = await inject({ method: 'GET', url: '/v1/devices', headers: auth() });
    const dev = (list.json().items as { id: string; capabilities: { cpu: { logicalCores: number } } }[]).find((d) => d.id === body.id);
    assert.equal(dev?.capabilities.cpu.logicalCores, 8);
    const bad = await inject({ method: 'POST', url: '/v1/devices', headers: { authorization: `Bearer ${agentTok}` }, payload: { ...body, capabilities: { ...body.capabilities, cpu: { arch: 'x64', logicalCores: 0 } } } });
    assert.equal(bad.json().error.field, 'capabilities.cpu.logicalCores');
    const viewerReg = await inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role: 'viewer' } });
    const denied = await inject({ method: 'POST', url: '/v1/devices', headers: { authorization: `Bearer ${viewerReg.json().token}` }, payload: body });
    assert.equal(denied.statusCode, 403);
  });
});
