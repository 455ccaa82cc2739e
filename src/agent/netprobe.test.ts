import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { NexusClient } from '../client/client.js';
import { keys } from '../store/keys.js';
import { startTestServer, type TestServer } from '../testing/server.js';
import { measureAndReport, measureBandwidth, measureRtt, percentile, summarize } from './netprobe.js';

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('netprobe against a real local server', () => {
  let t: TestServer;
  let client: NexusClient;

  before(async () => {
    t = await startTestServer();
    client = new NexusClient({ addr: t.server.url, token: t.adminToken });
  });
  after(async () => {
    client.close();
    await t.close();
  });

  it('measureRtt (TCP connect) on loopback: > 0 and < 50 ms', async () => {
    const s = await measureRtt({ host: '127.0.0.1', port: t.server.port }, 7);
    assert.equal(s.samples.length, 7);
    assert.equal(s.failures, 0);
    assert.equal(s.target, `127.0.0.1:${t.server.port}`);
    assert.ok(s.median > 0 && s.median < 50, `median ${s.median} ms`);
    assert.ok(s.min > 0 && s.min <= s.median && s.median <= s.p90 && s.p90 <= s.max, JSON.stringify(s));
    const byName = await measureRtt({ host: 'localhost', port: t.server.port }, 2);
    assert.ok(byName.median > 0 && byName.median < 50);
  });

  it('measureRtt (HTTP GET /healthz on a warm connection) on loopback: > 0 and < 50 ms', async () => {
    const s = await measureRtt({ host: '127.0.0.1', port: t.server.port }, 5, { method: 'http' });
    assert.equal(s.samples.length, 5);
    assert.ok(s.median > 0 && s.median < 50, `median ${s.median} ms`);
  });

  it('a refused connection is a round trip by default, a failure when asked', async () => {
    const port = await closedPort();
    const s = await measureRtt({ host: '127.0.0.1', port }, 3);
    assert.ok(s.median > 0 && s.median < 50);
    await assert.rejects(measureRtt({ host: '127.0.0.1', port }, 2, { countRefused: false }), (e: Error & { code?: string }) => e.code === 'NEXUS_E_NETPROBE' && /all 2 samples failed/.test(e.message));
    await assert.rejects(measureRtt({ host: 'no-such-host.invalid', port: 1 }, 1), (e: Error & { code?: string }) => e.code === 'NEXUS_E_NETPROBE' && /cannot resolve/.test(e.message));
  });

  it('measureBandwidth downloads exactly the bytes from GET /v1/topology/probe', async () => {
    const bw = await measureBandwidth(client.topology.probeUrl(), 4 * 1024 * 1024, { token: t.adminToken });
    assert.equal(bw.bytes, 4 * 1024 * 1024);
    assert.ok(bw.mbps > 0 && Number.isFinite(bw.mbps), JSON.stringify(bw));
    assert.ok(bw.seconds > 0 && bw.firstByteMs >= 0);
    await assert.rejects(measureBandwidth(client.topology.probeUrl(), 1000), (e: Error & { code?: string }) => e.code === 'NEXUS_E_NETPROBE' && /HTTP 401 NEXUS_E_UNAUTHENTICATED/.test(e.message));
  });

  it('measureAndReport: one round to the server and a peer, reported and visible in the matrix', async () => {
    for (const id of ['dev-self', 'dev-peer']) {
      await t.server.store.put(keys.device(id), JSON.stringify({ id, name: id, state: 'ready', tier: 'local', labels: {}, warnings: [], registeredAt: new Date().toISOString(),
        capabilities: { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 1 }, memory: { totalBytes: 2 ** 30 }, gpus: [] } }));
    }
    const unreachable = await closedPort();
    const round = await measureAndReport({
      client, deviceId: 'dev-self', samples: 3, bandwidthBytes: 1024 * 1024,
      peers: [{ id: 'dev-peer', host: '127.0.0.1', port: t.server.port }, { id: 'dev-gone', host: '127.0.0.1', port: unreachable }, { id: 'dev-self', host: '127.0.0.1', port: 1 }],
      rtt: { countRefused: false, timeoutMs: 1000 },
    });
    assert.deepEqual(round.result, { accepted: 2, ignored: 0 });
    assert.deepEqual(round.errors.map((e) => e.to), ['dev-gone']);
    const m = await client.topology.get();
    const server = m.matrix['dev-self']!.server!;
    assert.ok(server.rttMs > 0 && server.rttMs < 50);
    assert.ok(server.bandwidthMbps! > 0);
    assert.ok(m.matrix['dev-self']!['dev-peer']!.rttMs > 0);
  });
});

describe('netprobe statistics', () => {
  it('percentile is nearest-rank; median of an even count is the mean of the middle two', () => {
    const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.equal(percentile(xs, 90), 9);
    assert.equal(percentile(xs, 100), 10);
    assert.equal(percentile(xs, 0), 1);
    const s = summarize('h:1', [4, 1, 3, 2], 1);
    assert.deepEqual([s.min, s.median, s.p90, s.max, s.failures], [1, 2.5, 4, 4, 1]);
    assert.deepEqual(s.samples, [4, 1, 3, 2], 'samples stay in the order taken');
  });
});
