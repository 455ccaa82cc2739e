import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NexusError } from '../errors/catalogue.js';
import type { Heartbeat } from '../resources/device.js';
import { HeartbeatStream, HeartbeatStreams, MAX_LINE_BYTES, REVERIFY_MS } from './heartbeat-stream.js';

function harness(opts: { reverify?: () => Promise<void> | void; interval?: () => number } = {}) {
  const out: string[] = [];
  const beats: Heartbeat[] = [];
  let ended = false;
  let now = 1_000_000;
  const stream = new HeartbeatStream({
    deviceId: 'dev-1',
    sink: { write: (l) => (out.push(String(l)), true), unread: 0, end: () => (ended = true) },
    beat: (hb) => (beats.push(hb), opts.interval?.() ?? 1000),
    reverify: opts.reverify ?? (() => undefined),
    now: () => now,
  });
  const answers = () => out.map((l) => JSON.parse(l) as { intervalMs?: number; error?: { code: string; field?: string } });
  return { stream, out, beats, answers, ended: () => ended, advance: (ms: number) => (now += ms) };
}

const line = (v: unknown) => Buffer.from(JSON.stringify(v) + '\n');

describe('heartbeat stream: framing and answers', () => {
  it('records every line and answers, in order, the ones that ask; lines split across chunks and packed in one chunk both work', () => {
    const h = harness();
    const two = Buffer.concat([line({ ack: true }), line({ utilization: { cpuPct: 5, memoryUsedBytes: 10 } })]);
    h.stream.push(two);
    const third = line({ utilization: { cpuPct: 7.5, memoryUsedBytes: 20 }, ack: true });
    h.stream.push(third.subarray(0, 5));
    h.stream.push(third.subarray(5, 9));
    assert.equal(h.out.length, 1, 'no answer for the unasked line, none for half a line');
    h.stream.push(third.subarray(9));
    assert.deepEqual(h.answers(), [{ intervalMs: 1000, ack: true }, { intervalMs: 1000, ack: true }]);
    assert.equal(h.beats.length, 3);
    assert.equal(h.beats[2]!.utilization!.cpuPct, 7.5);
    assert.equal(h.stream.beats, 3);
  });

  it('tells the agent once, unasked, when its interval changes', () => {
    let interval = 1000;
    const h = harness({ interval: () => interval });
    h.stream.push(line({}));
    assert.equal(h.out.length, 0, 'the default interval needs no notice');
    interval = 2500;
    h.stream.push(line({}));
    h.stream.push(line({}));
    h.stream.push(line({ ack: true }));
    assert.deepEqual(h.answers(), [{ intervalMs: 2500 }, { intervalMs: 2500, ack: true }]);
  });

  it('a bad line gets an error line with a stable code and the field; the stream goes on', () => {
    const h = harness();
    h.stream.push(Buffer.from('{"utilization":\n'));
    h.stream.push(line({ utilization: { cpuPct: 101, memoryUsedBytes: 1 } }));
    h.stream.push(line({ utilization: { cpuPct: 1 } }));
    h.stream.push(line({ utilisation: {} }));
    h.stream.push(line([1, 2]));
    h.stream.push(Buffer.from('\n\r\n'));
    h.stream.push(line({ ack: true }));
    const a = h.answers();
    assert.equal(a[0]!.error!.code, 'NEXUS_E_BAD_JSON');
    assert.deepEqual([a[1]!.error!.code, a[1]!.error!.field], ['NEXUS_E_VALIDATION', 'utilization.cpuPct']);
    assert.deepEqual([a[2]!.error!.code, a[2]!.error!.field], ['NEXUS_E_VALIDATION', 'utilization.memoryUsedBytes']);
    assert.deepEqual([a[3]!.error!.code, a[3]!.error!.field], ['NEXUS_E_UNKNOWN_FIELD', 'utilisation']);
    assert.deepEqual([a[4]!.error!.code, a[4]!.error!.field], ['NEXUS_E_VALIDATION', 'heartbeat']);
    assert.deepEqual(a[5], { intervalMs: 1000, ack: true }, 'blank lines are keep-alives, not heartbeats');
    assert.equal(a.length, 6);
    assert.equal(h.beats.length, 1, 'only the valid line counted');
    assert.equal(h.ended(), false);
  });

  it('a line past the limit ends the stream with NEXUS_E_BODY_TOO_LARGE, in one chunk or in many', () => {
    for (const chunks of [1, 7]) {
      const h = harness();
      const big = Buffer.alloc(MAX_LINE_BYTES + 10, 0x20);
      const size = Math.ceil(big.length / chunks);
      for (let i = 0; i < big.length; i += size) h.stream.push(big.subarray(i, i + size));
      assert.equal(h.answers()[0]!.error!.code, 'NEXUS_E_BODY_TOO_LARGE', `${chunks} chunk(s)`);
      assert.ok(h.ended());
      h.stream.push(line({}));
      assert.equal(h.out.length, 1, 'nothing after the end');
    }
  });

  it('checks the credential again after REVERIFY_MS, and a refusal ends the stream with its code', async () => {
    let checks = 0;
    let revoked = false;
    const h = harness({
      reverify: async () => {
        checks++;
        if (revoked) throw new NexusError('NEXUS_E_DEVICE_REVOKED', { id: 'dev-1', at: 'now' });
      },
    });
    h.stream.push(line({}));
    assert.equal(checks, 0, 'fresh from authentication: no check');
    h.advance(REVERIFY_MS);
    h.stream.push(line({}));
    await new Promise((r) => setImmediate(r));
    assert.equal(checks, 1);
    h.stream.push(line({}));
    assert.equal(checks, 1, 'not again before REVERIFY_MS');
    revoked = true;
    h.advance(REVERIFY_MS);
    h.stream.push(line({}));
    await new Promise((r) => setImmediate(r));
    assert.equal(checks, 2);
    assert.ok(h.ended());
    assert.equal(h.answers().at(-1)!.error!.code, 'NEXUS_E_DEVICE_REVOKED');
  });
});

describe('heartbeat streams: the registry', () => {
  it('closes idle streams with NEXUS_E_STREAM_IDLE, a device\'s streams on revocation, and all on shutdown', async () => {
    let now = 0;
    const streams = new HeartbeatStreams(() => 15_000, 5, () => now);
    const make = (id: string) => {
      const out: string[] = [];
      const s = new HeartbeatStream({ deviceId: id, sink: { write: (l) => (out.push(String(l)), true), unread: 0, end: () => {} }, beat: () => 1000, reverify: () => {}, now: () => now });
      streams.add(s);
      return { s, last: () => JSON.parse(out.at(-1) ?? 'null') as { error?: { code: string } } | null };
    };
    const quiet = make('a');
    const busy = make('b');
    const other = make('c');
    now = 10_000;
    busy.s.push(line({}));
    other.s.push(line({}));
    now = 16_000;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(quiet.s.isClosed, true);
    assert.equal(quiet.last()!.error!.code, 'NEXUS_E_STREAM_IDLE');
    assert.equal(busy.s.isClosed, false);
    assert.equal(streams.size, 2);
    streams.closeDevice('b', new NexusError('NEXUS_E_DEVICE_REVOKED', { id: 'b', at: 'now' }));
    assert.equal(busy.last()!.error!.code, 'NEXUS_E_DEVICE_REVOKED');
    assert.equal(other.s.isClosed, false);
    streams.closeAll(new NexusError('NEXUS_E_NOT_READY', { detail: 'the server is shutting down' }));
    assert.equal(other.last()!.error!.code, 'NEXUS_E_NOT_READY');
    assert.equal(streams.size, 0);
  });
});
