// The heartbeat stream over a real socket: a real server (SQLite, loopback) and node:http clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ApiError } from '../client/transport.js';
import { HeartbeatStreamClient } from '../client/heartbeat-stream.js';
import { startTestServer, type TestServer } from '../testing/server.js';

const caps = { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 4 }, memory: { totalBytes: 8e9 }, gpus: [] };

/** Opens a stream by hand: what was answered (status, lines) and a writer for lines. */
function rawStream(url: string, token: string | undefined, upgrade = 'nexus-heartbeats/1', method = 'GET') {
  const lines: string[] = [];
  let status = 0;
  let ended = false;
  let buf = '';
  let socket: import('node:stream').Duplex | undefined;
  const onText = (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
  const onEnd = () => {
    if (buf) lines.push(buf);
    buf = '';
    ended = true;
  };
  const req = http.request(url, { method, headers: { connection: 'Upgrade', upgrade, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  const opened = new Promise<void>((resolve) => {
    req.on('upgrade', (res, sock, head) => {
      status = res.statusCode ?? 0;
      socket = sock;
      sock.on('data', (c: Buffer) => onText(c.toString('utf8')));
      sock.on('end', onEnd);
      sock.on('close', onEnd);
      if (head.length) onText(head.toString('utf8'));
      resolve();
    });
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', onText);
      res.on('end', onEnd);
      resolve();
    });
    req.on('error', () => resolve());
  });
  req.end();
  return {
    opened,
    write: (s: string) => socket!.write(s),
    lines,
    status: () => status,
    ended: () => ended,
    close: () => (socket ?? req).destroy(),
  };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('heartbeat stream API (GET /v1/devices/:id/heartbeats, Upgrade: nexus-heartbeats/1)', () => {
  let t: TestServer;
  let device: { id: string };
  let token: string;
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const streamUrl = (id: string) => `${t.server.url}/v1/devices/${id}/heartbeats`;

  before(async () => {
    t = await startTestServer();
    const join = (await t.server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'agent' } })).json().token as string;
    const r = await t.server.app.inject({ method: 'POST', url: '/v1/join', headers: { authorization: `Bearer ${join}` }, payload: { name: 'streamer', capabilities: caps } });
    ({ device, token } = r.json());
  });
  after(async () => t.close());

  it('answers every line with the interval, records utilization, and answers bad lines with a code and field', async () => {
    const s = rawStream(streamUrl(device.id), token);
    await s.opened;
    assert.equal(s.status(), 101);
    s.write(JSON.stringify({ utilization: { cpuPct: 42.5, memoryUsedBytes: 123 }, ack: true }) + '\n');
    s.write('{}\n{"utilization": {"cpuPct": "high", "memoryUsedBytes": 1}}\n{not json\n');
    s.write('{"ack":true}\n');
    await until(() => s.lines.length >= 4, 'four answers');
    const a = s.lines.map((l) => JSON.parse(l));
    assert.deepEqual(a[0], { intervalMs: 1000, ack: true });
    assert.deepEqual([a[1].error.code, a[1].error.field], ['NEXUS_E_VALIDATION', 'utilization.cpuPct'], 'the unasked {} got no answer');
    assert.equal(a[2].error.code, 'NEXUS_E_BAD_JSON');
    assert.deepEqual(a[3], { intervalMs: 1000, ack: true });
    const dev = (await t.server.app.inject({ method: 'GET', url: `/v1/devices/${device.id}`, headers: admin() })).json();
    assert.equal(dev.utilization.cpuPct, 42.5);
    s.close();
  });

  it('is refused in the API error shape before it opens: no token 401, another device 403, another protocol 400, wrong method 405, unknown path 404', async () => {
    const none = rawStream(streamUrl(device.id), undefined);
    await none.opened;
    await until(() => none.ended(), 'the refusal');
    assert.equal(none.status(), 401);
    assert.equal(JSON.parse(none.lines.join('')).error.code, 'NEXUS_E_UNAUTHENTICATED');
    const other = rawStream(streamUrl('dev-someone-else'), token);
    await other.opened;
    await until(() => other.ended(), 'the refusal');
    assert.equal(other.status(), 403);
    assert.equal(JSON.parse(other.lines.join('')).error.code, 'NEXUS_E_FORBIDDEN');
    const refusals: [ReturnType<typeof rawStream>, number, string, string?][] = [
      [rawStream(streamUrl(device.id), token, 'websocket'), 400, 'NEXUS_E_VALIDATION', 'upgrade'],
      [rawStream(streamUrl(device.id), token, 'nexus-heartbeats/1', 'POST'), 405, 'NEXUS_E_METHOD_NOT_ALLOWED'],
      [rawStream(`${t.server.url}/v1/devices/${device.id}/elsewhere`, token), 404, 'NEXUS_E_ROUTE_NOT_FOUND'],
    ];
    for (const [s, status, code, field] of refusals) {
      await s.opened;
      await until(() => s.ended(), `the ${code} refusal`);
      const err = JSON.parse(s.lines.join('')).error;
      assert.deepEqual([s.status(), err.code, err.field], [status, code, field], s.lines.join(''));
      s.close();
    }
    for (const s of [none, other]) s.close();
  });

  it('the client resolves each send with the answer, and revoking the device ends its stream with NEXUS_E_DEVICE_REVOKED', async () => {
    const join = (await t.server.app.inject({ method: 'POST', url: '/v1/tokens', headers: admin(), payload: { role: 'agent' } })).json().token as string;
    const r = (await t.server.app.inject({ method: 'POST', url: '/v1/join', headers: { authorization: `Bearer ${join}` }, payload: { name: 'doomed', capabilities: caps } })).json();
    const client = new HeartbeatStreamClient({ addr: t.server.url, token: r.token, timeoutMs: 3000 }, r.device.id);
    try {
      for (let i = 0; i < 6; i++) assert.deepEqual(await client.send(i % 2 ? { ack: true } : {}), { intervalMs: 1000 });
      assert.equal(client.isOpen, true);
      assert.equal(t.server.ctx.heartbeatStreams.size, 1);
      const revoked = await t.server.app.inject({ method: 'POST', url: `/v1/devices/${r.device.id}/revoke`, headers: admin(), payload: {} });
      assert.equal(revoked.statusCode, 200);
      await until(() => !client.isOpen, 'the stream to close');
      // The next beat opens a new stream, which the server refuses for good.
      await assert.rejects(client.send({}), (e: unknown) => e instanceof ApiError && e.code === 'NEXUS_E_DEVICE_REVOKED');
      await until(() => t.server.ctx.heartbeatStreams.size === 0, 'the server to forget the stream');
    } finally {
      client.close();
    }
  });

  it('a client that stops writing and hangs up is forgotten by the server', async () => {
    const s = rawStream(streamUrl(device.id), token);
    await s.opened;
    s.write('{"ack":true}\n');
    await until(() => s.lines.length === 1, 'the answer');
    assert.equal(t.server.ctx.heartbeatStreams.size, 1);
    s.close();
    await until(() => t.server.ctx.heartbeatStreams.size === 0, 'the server to forget the stream');
  });
});
