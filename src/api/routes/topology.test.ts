import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { renderMatrix } from '../../cli/commands/topology.js';
import { MAX_PROBE_BYTES } from '../../resources/topology.js';
import { keys } from '../../store/keys.js';
import type { Principal } from '../../tenancy/roles.js';
import { runCli } from '../../testing/cli.js';
import { startTestServer, type TestServer } from '../../testing/server.js';

describe('topology API', () => {
  let t: TestServer;
  let viewer: string;
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const admin = () => as(t.adminToken);
  const inject = (opts: InjectOptions) => t.server.app.inject(opts);
  const report = (body: object, headers = admin()) => inject({ method: 'POST', url: '/v1/topology/samples', headers, payload: body });
  const matrix = async (query = '') => (await inject({ method: 'GET', url: `/v1/topology${query}`, headers: admin() })).json();
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

  before(async () => {
    t = await startTestServer();
    for (const id of ['dev-a', 'dev-b', 'dev-c']) {
      await t.server.store.put(keys.device(id), JSON.stringify({ id, name: `box-${id.slice(-1)}`, state: 'ready', tier: 'local', labels: {}, warnings: [], registeredAt: ago(0),
        capabilities: { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 2 }, memory: { totalBytes: 2 ** 30 }, gpus: [] } }));
    }
    viewer = (await inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'viewer' } })).json().token;
  });
  after(async () => t.close());

  it('stores samples and serves the matrix with every device', async () => {
    const r = await report({ from: 'dev-a', samples: [{ to: 'server', rttMs: 0.8, at: ago(5000) }, { to: 'dev-b', rttMs: 2.5, bandwidthMbps: 940, at: ago(5000) }] });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json(), { accepted: 2, ignored: 0 });
    const m = await matrix();
    assert.deepEqual(m.devices, ['dev-a', 'dev-b', 'dev-c']);
    assert.equal(m.matrix['dev-a'].server.rttMs, 0.8);
    assert.equal(m.matrix['dev-a']['dev-b'].bandwidthMbps, 940);
    assert.equal(m.matrix['dev-b'], undefined);
    const viewerGet = await inject({ method: 'GET', url: '/v1/topology', headers: as(viewer) });
    assert.equal(viewerGet.statusCode, 200);
  });

  it('keeps the latest sample per pair; bandwidth survives RTT-only samples; the future is clamped', async () => {
    const old = await report({ from: 'dev-a', samples: [{ to: 'dev-b', rttMs: 99, at: ago(60_000) }] });
    assert.deepEqual(old.json(), { accepted: 0, ignored: 1 });
    assert.equal((await matrix()).matrix['dev-a']['dev-b'].rttMs, 2.5);

    const fresh = await report({ from: 'dev-a', samples: [{ to: 'dev-b', rttMs: 3, at: ago(1000) }, { to: 'dev-b', rttMs: 4, at: ago(2000) }] });
    assert.deepEqual(fresh.json(), { accepted: 1, ignored: 1 }, 'the newer of two samples for one pair wins');
    const link = (await matrix()).matrix['dev-a']['dev-b'];
    assert.equal(link.rttMs, 3);
    assert.equal(link.bandwidthMbps, 940, 'the last bandwidth is kept');
    assert.ok(link.bandwidthAt < link.at);

    const future = new Date(Date.now() + 3_600_000).toISOString();
    await report({ from: 'dev-a', samples: [{ to: 'dev-c', rttMs: 1, at: future }, { to: 'server', rttMs: 0.7 }] });
    const m = (await matrix()).matrix['dev-a'];
    assert.ok(Date.parse(m['dev-c'].at) <= Date.now(), 'clamped to the server clock');
    assert.ok(Date.now() - Date.parse(m.server.at) < 10_000, 'no `at` = now');
  });

  it('maxAgeSeconds leaves out old links', async () => {
    await report({ from: 'dev-c', samples: [{ to: 'server', rttMs: 5, at: ago(3_600_000) }] });
    assert.equal((await matrix()).matrix['dev-c'].server.rttMs, 5);
    assert.equal((await matrix('?maxAgeSeconds=60')).matrix['dev-c'], undefined);
  });

  it('rejects bad reports, naming the field', async () => {
    const bad = async (body: object, status: number, code: string, field?: string) => {
      const r = await report(body);
      assert.deepEqual([r.statusCode, r.json().error.code], [status, code], JSON.stringify(body) + r.body);
      if (field) assert.equal(r.json().error.field, field);
    };
    await bad({ from: 'dev-x', samples: [{ to: 'server', rttMs: 1 }] }, 404, 'NEXUS_E_NOT_FOUND');
    await bad({ from: 'server', samples: [{ to: 'dev-a', rttMs: 1 }] }, 400, 'NEXUS_E_VALIDATION', 'from');
    await bad({ from: 'dev-a', samples: [{ to: 'dev-a', rttMs: 1 }] }, 400, 'NEXUS_E_VALIDATION', 'samples.0.to');
    await bad({ from: 'dev-a', samples: [{ to: 'dev-b', rttMs: -1 }] }, 400, 'NEXUS_E_VALIDATION', 'samples.0.rttMs');
    await bad({ from: 'dev-a', samples: [{ to: 'dev-b', rttMs: 1, at: 'yesterday' }] }, 400, 'NEXUS_E_VALIDATION', 'samples.0.at');
    await bad({ from: 'dev-a', samples: [] }, 400, 'NEXUS_E_VALIDATION', 'samples');
    await bad({ from: 'dev-a', samples: [{ to: 'dev-b', rttMs: 1, jitter: 2 }] }, 400, 'NEXUS_E_UNKNOWN_FIELD', 'samples.0.jitter');
    await bad({ from: 'a/b', samples: [{ to: 'dev-b', rttMs: 1 }] }, 400, 'NEXUS_E_VALIDATION', 'from');
  });

  it('viewers cannot report; an agent bound to a device reports only for that device', async () => {
    const v = await report({ from: 'dev-a', samples: [{ to: 'server', rttMs: 1 }] }, as(viewer));
    assert.deepEqual([v.statusCode, v.json().error.code], [403, 'NEXUS_E_FORBIDDEN']);
    const bound: Principal = { tokenId: 'tk-test', role: 'agent', tenant: 'default', deviceId: 'dev-b' };
    await assert.rejects(t.server.ctx.topology.report(bound, { from: 'dev-a', samples: [{ to: 'server', rttMs: 1 }] }), (e: Error & { code?: string; field?: string }) => e.code === 'NEXUS_E_FORBIDDEN' && e.field === 'from');
    assert.deepEqual(await t.server.ctx.topology.report(bound, { from: 'dev-b', samples: [{ to: 'server', rttMs: 1 }] }), { accepted: 1, ignored: 0 });
    // An agent token not bound to a device (the shared join token) may report for any device.
    const agent = (await inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'agent' } })).json().token;
    assert.equal((await report({ from: 'dev-c', samples: [{ to: 'dev-a', rttMs: 1 }] }, as(agent))).statusCode, 200);
  });

  it('probe streams exactly the bytes asked for, up to the cap', async () => {
    const r = await inject({ method: 'GET', url: '/v1/topology/probe?bytes=200000', headers: as(viewer) });
    assert.equal(r.statusCode, 200);
    assert.equal(r.rawPayload.length, 200_000);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.headers['content-length'], '200000');
    const dflt = await inject({ method: 'GET', url: '/v1/topology/probe', headers: admin() });
    assert.equal(dflt.rawPayload.length, 1024 * 1024);
    for (const q of [`bytes=${MAX_PROBE_BYTES + 1}`, 'bytes=0', 'bytes=abc', 'bytes=-5']) {
      const bad = await inject({ method: 'GET', url: `/v1/topology/probe?${q}`, headers: admin() });
      assert.equal(bad.statusCode, 400, q);
      assert.equal(bad.json().error.field, 'querystring.bytes', q);
    }
    assert.equal((await inject({ method: 'GET', url: '/v1/topology/probe?bytes=10' })).statusCode, 401);
  });

  it('forget drops every link from and to a device', async () => {
    await report({ from: 'dev-b', samples: [{ to: 'dev-a', rttMs: 1 }, { to: 'dev-c', rttMs: 1 }] });
    await t.server.ctx.topology.forget('dev-a');
    const m = (await matrix()).matrix;
    assert.equal(m['dev-a'], undefined);
    assert.equal(m['dev-b']['dev-a'], undefined);
    assert.equal(m['dev-c']?.['dev-a'], undefined);
    assert.ok(m['dev-b']['dev-c']);
  });

  it('CLI: nexus topology prints a matrix (names where unique) and --json', async () => {
    const env = { NEXUS_ADDR: t.server.url, NEXUS_TOKEN: t.adminToken, NEXUS_CONFIG: '', XDG_CONFIG_HOME: join(t.dataDir, 'cfg') };
    const text = await runCli(['topology'], env);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    assert.match(lines[0]!, /^FROM \\ TO\s+SERVER\s+box-a\s+box-b\s+box-c$/);
    assert.match(lines.find((l) => l.startsWith('box-b'))!, /^box-b\s+1\.00ms\s+-\s+·\s+1\.00ms$/);
    const json = await runCli(['topology', '--json'], env);
    assert.deepEqual(JSON.parse(json.stdout).devices, ['dev-a', 'dev-b', 'dev-c']);
  });

  it('renderMatrix formats RTT and bandwidth', () => {
    const lines = renderMatrix({ devices: ['x', 'y'], matrix: { x: { server: { rttMs: 0.123, at: ago(0) }, y: { rttMs: 12.34, bandwidthMbps: 941.2, at: ago(0) } } } });
    assert.deepEqual(lines.map((l) => l.split(/\s{2,}/)), [['FROM \\ TO', 'SERVER', 'x', 'y'], ['x', '0.12ms', '·', '12.3ms 941Mb/s'], ['y', '-', '-', '·']]);
  });
});
