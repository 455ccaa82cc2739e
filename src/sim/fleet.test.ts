// The device simulator against a real (in-process, plain HTTP) server with fast health thresholds,
// and its HTTP client against odd answers (chunked, large, connection: close).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestServer, type TestServer } from '../testing/server.js';
import { DeviceFleet, HttpPool } from './index.js';

describe('device simulator', () => {
  let t: TestServer;
  let fleet: DeviceFleet;

  before(async () => {
    t = await startTestServer({ health: { heartbeatMs: 200, unreachableAfterMs: 500, downAfterMs: 800, restartGraceMs: 0 }, compute: false });
  });

  after(async () => {
    fleet?.stop();
    await t?.close();
  });

  it('joins devices through POST /v1/join, each with its own credential, and heartbeats at the announced interval', async () => {
    const admin = new HttpPool({ url: t.server.url, sockets: 1 });
    const { token } = await admin.json<{ token: string }>('POST', '/v1/tokens', t.adminToken, { role: 'agent' });
    admin.close();
    fleet = await DeviceFleet.connect({ server: t.server.url, joinToken: token, sockets: 8, joinConcurrency: 8 });
    fleet.start();
    const joined = await fleet.join(40);
    assert.equal(joined.joined, 40, JSON.stringify(joined.errors));
    assert.equal(new Set(fleet.devices.map((d) => d.token)).size, 40, 'one credential per device');
    assert.equal((await t.server.ctx.devices.list({ tokenId: 'test', role: 'admin', tenant: 'default' })).length, 40);
    fleet.resetWindow();
    await new Promise((r) => setTimeout(r, 1500));
    const w = fleet.window();
    assert.equal(w.failed, 0, JSON.stringify(w.errors));
    assert.equal(w.intervalMs, 200, 'the interval the server announced');
    // 40 devices every 170–200 ms: ≈ 216/s expected.
    assert.ok(w.perSecond > 0.8 * w.expectedPerSecond && w.perSecond < 1.2 * w.expectedPerSecond, `${w.perSecond}/s vs ${w.expectedPerSecond}/s`);
    assert.ok(w.latency.count > 0 && w.latency.p99 >= w.latency.p50 && w.latency.max >= w.latency.p99);
  });

  it('killed devices stop heartbeating and are seen down; the others stay ready', async () => {
    const victims = fleet.kill(3);
    assert.equal(victims.length, 3);
    const det = await fleet.watchDown(victims, t.adminToken, 50, 10_000);
    for (const d of det) {
      assert.ok(d.downS !== undefined, `${d.name} never down`);
      // down after 800 ms without a heartbeat, swept every 250 ms; the last beat came ≤ 200 ms before the kill.
      assert.ok(d.downS! > 0.5 && d.downS! < 3, `${d.name} down after ${d.downS} s`);
    }
    const alive = fleet.devices.find((d) => d.alive)!;
    const dev = await fleet.read<{ state: string }>('GET', `/v1/devices/${alive.id}`, t.adminToken);
    assert.equal(dev.state, 'ready');
    const list = await fleet.timeList(t.adminToken);
    assert.equal(list.items, 40);
  });

  it('a join token of another cluster (wrong pin) is refused before anything is sent', async () => {
    await assert.rejects(DeviceFleet.connect({ server: 'https://127.0.0.1:1', joinToken: `NX1${'ab'.repeat(32)}::tkx.y`, ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' }));
  });
});

describe('simulator HTTP client', () => {
  let server: http.Server;
  let url: string;
  const big = 'x'.repeat(3 * 1024 * 1024);

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/chunked') {
        res.write('{"a":');
        setTimeout(() => res.end('1}'), 5);
      } else if (req.url === '/big') {
        res.setHeader('content-length', big.length);
        res.end(big);
      } else if (req.url === '/close') {
        res.setHeader('connection', 'close');
        res.end('{"closed":true}');
      } else {
        res.statusCode = 404;
        res.end('{"error":{"code":"NEXUS_E_NOT_FOUND"}}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  it('reads chunked, large and connection-close answers, and errors with the API code', async () => {
    const pool = new HttpPool({ url, sockets: 2 });
    try {
      assert.deepEqual(await pool.json('GET', '/chunked', undefined), { a: 1 });
      const res = await pool.send(pool.head('GET', '/big', [], undefined));
      assert.equal(res.body.length, big.length);
      assert.deepEqual(await pool.json('GET', '/close', undefined), { closed: true });
      assert.deepEqual(await pool.json('GET', '/close', undefined), { closed: true }, 'a new connection after close');
      await assert.rejects(pool.json('GET', '/nope', undefined), (e: Error & { code?: string }) => e.code === 'NEXUS_E_NOT_FOUND');
    } finally {
      pool.close();
    }
  });
});
