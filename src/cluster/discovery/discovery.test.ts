// Discovery on one host: the record logic with crafted packets, then announce + discover over real
// multicast on 127.0.0.1 (Linux loops multicast back on lo even without the MULTICAST flag). The
// live tests use a random mDNS port so they never talk to a real responder on 5353 or to another
// test run. The cross-host proof is test/discovery-netns.int.test.ts.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { NetworkInterfaceInfo } from 'node:os';
import type { Answer } from 'dns-packet';

/** The `data` of a record, whatever its type. */
const dataOf = (a: Answer): unknown => (a as { data?: unknown }).data;
import mdns from 'multicast-dns';
import { announce, discover, MDNS_GROUP, SERVICE_TYPE } from './index.js';
import { advertisedAddresses, resolveInterface } from './addresses.js';
import { DiscoveryCache, parseTxt } from './cache.js';
import { announcement, answerQuery, buildRecords, serviceInfo } from './records.js';

const PIN = 'ab'.repeat(32);
const PIN2 = 'cd'.repeat(32);
const info = serviceInfo({ port: 7443, clusterId: 'c-1', caPin: PIN.toUpperCase(), hostname: 'Node_1.example.com' });
const FQDN = `nexus-node-1-7443.${SERVICE_TYPE}`;

function iface(address: string, netmask: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: null };
}
const IFACES: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [iface('127.0.0.1', '255.0.0.0', true)],
  eth0: [iface('192.168.1.20', '255.255.255.0'), { ...iface('fe80::1', 'ffff::'), family: 'IPv6', scopeid: 2 }],
  eth1: [iface('10.9.0.5', '255.255.0.0')],
};

/** A response packet as multicast-dns hands it over after decoding. */
function response(answers: unknown[], additionals: unknown[] = []) {
  return { type: 'response', answers, additionals };
}
const rec = {
  ptr: (data = FQDN, ttl = 120) => ({ name: SERVICE_TYPE, type: 'PTR', class: 'IN', ttl, data }),
  srv: (port = 7443, target = 'node-1.local', name = FQDN, ttl = 120) => ({ name, type: 'SRV', class: 'IN', ttl, flush: true, data: { priority: 0, weight: 0, port, target } }),
  txt: (data: unknown = ['v=1', 'cid=c-1', `pin=${PIN}`, 'api=7443'].map((s) => Buffer.from(s)), name = FQDN, ttl = 120) => ({ name, type: 'TXT', class: 'IN', ttl, flush: true, data }),
  a: (data = '192.168.1.20', name = 'node-1.local', ttl = 120, flush = true) => ({ name, type: 'A', class: 'IN', ttl, flush, data }),
};

describe('records', () => {
  it('validates announce options and derives names', () => {
    assert.equal(info.instance, 'nexus-node-1-7443');
    assert.equal(info.host, 'node-1.local');
    assert.equal(info.caPin, PIN, 'the pin is lower-cased');
    assert.equal(serviceInfo({ ...info, hostname: 'h', instanceName: 'rack 3.left' }).instance, 'rack 3-left', 'dots would split the label');
    assert.throws(() => serviceInfo({ ...info, hostname: 'h', port: 0 }), /port/);
    assert.throws(() => serviceInfo({ ...info, hostname: 'h', caPin: 'nope' }), /caPin/);
    assert.throws(() => serviceInfo({ ...info, hostname: 'h', clusterId: '' }), /clusterId/);
    assert.throws(() => serviceInfo({ ...info, hostname: 'h', clusterId: 'x'.repeat(300) }), /too long/);
  });

  it('builds RFC 6763 records: shared PTR, unique (cache-flush) SRV/TXT/A, key=value TXT', () => {
    const r = buildRecords(info, ['192.168.1.20']);
    assert.deepEqual(r.ptr, { name: SERVICE_TYPE, type: 'PTR', class: 'IN', ttl: 120, data: FQDN });
    assert.deepEqual(r.srv, { name: FQDN, type: 'SRV', class: 'IN', ttl: 120, flush: true, data: { priority: 0, weight: 0, port: 7443, target: 'node-1.local' } });
    assert.deepEqual(dataOf(r.txt), ['v=1', 'cid=c-1', `pin=${PIN}`, 'api=7443']);
    assert.deepEqual(r.a, [{ name: 'node-1.local', type: 'A', class: 'IN', ttl: 120, flush: true, data: '192.168.1.20' }]);
    assert.ok(announcement(info, ['192.168.1.20'], 0).every((a) => (a as { ttl?: number }).ttl === 0), 'goodbye is TTL 0');
    const legacy = buildRecords(info, ['192.168.1.20'], { unicast: true });
    assert.equal((legacy.srv as { ttl: number }).ttl, 10);
    assert.equal((legacy.srv as { flush: boolean }).flush, false);
  });

  it('answers PTR with SRV/TXT/A as additionals, and SRV, TXT, A, ANY and the enumeration', () => {
    const addrs = ['192.168.1.20'];
    const ptr = answerQuery(info, addrs, [{ name: '_NEXUS._tcp.local', type: 'PTR', class: 'IN' }])!;
    assert.deepEqual(ptr.answers.map((a) => a.type), ['PTR']);
    assert.deepEqual(ptr.additionals.map((a) => a.type), ['SRV', 'TXT', 'A']);
    assert.equal(ptr.shared, true);
    const srv = answerQuery(info, addrs, [{ name: FQDN, type: 'SRV' }])!;
    assert.deepEqual([srv.answers.map((a) => a.type), srv.additionals.map((a) => a.type), srv.shared], [['SRV'], ['A'], false]);
    assert.deepEqual(answerQuery(info, addrs, [{ name: FQDN, type: 'ANY' as 'A' }])!.answers.map((a) => a.type), ['SRV', 'TXT']);
    assert.deepEqual(answerQuery(info, addrs, [{ name: 'node-1.local', type: 'A' }])!.answers.map(dataOf), addrs);
    assert.equal(dataOf(answerQuery(info, addrs, [{ name: '_services._dns-sd._udp.local', type: 'PTR' }])!.answers[0]!), SERVICE_TYPE);
    assert.equal(answerQuery(info, addrs, [{ name: '_http._tcp.local', type: 'PTR' }]), undefined);
    assert.equal(answerQuery(info, addrs, [{ name: SERVICE_TYPE, type: 'PTR', class: 'CH' }]), undefined);
    assert.equal(answerQuery(info, addrs, [{ name: SERVICE_TYPE, type: 'PTR', class: 'UNKNOWN_32769' as 'IN' }])?.answers.length, 1, 'QU questions are answered');
  });

  it('suppresses answers the querier already knows with at least half the TTL (RFC 6762 §7.1)', () => {
    const q = [{ name: SERVICE_TYPE, type: 'PTR' as const }];
    assert.equal(answerQuery(info, [], q, [rec.ptr(FQDN.toUpperCase(), 60) as Answer]), undefined);
    assert.equal(answerQuery(info, [], q, [rec.ptr(FQDN, 59) as Answer])?.answers.length, 1);
    assert.equal(answerQuery(info, [], q, [rec.ptr(`other.${SERVICE_TYPE}`, 120) as Answer])?.answers.length, 1);
  });

  it('advertises non-loopback IPv4 addresses, loopback only when alone, the subnet of the asker first', () => {
    assert.deepEqual(advertisedAddresses(IFACES), ['192.168.1.20', '10.9.0.5']);
    assert.deepEqual(advertisedAddresses({ lo: IFACES['lo'] }), ['127.0.0.1']);
    assert.deepEqual(advertisedAddresses(IFACES, '10.9.0.5'), ['10.9.0.5']);
    assert.deepEqual(advertisedAddresses(IFACES, undefined, '10.9.200.1'), ['10.9.0.5']);
    assert.deepEqual(advertisedAddresses(IFACES, undefined, '172.16.0.1'), ['192.168.1.20', '10.9.0.5']);
    assert.equal(resolveInterface(IFACES, 'eth1'), '10.9.0.5');
    assert.equal(resolveInterface(IFACES, '10.9.0.5'), '10.9.0.5');
    assert.throws(() => resolveInterface(IFACES, 'wlan7'), /no IPv4 interface/);
  });

  it('parses TXT key=value pairs; the first occurrence wins, keys are case-insensitive', () => {
    assert.deepEqual([...parseTxt([Buffer.from('V=1'), Buffer.from('v=2'), Buffer.from('novalue'), Buffer.from('=x'), Buffer.from('cid=a=b')])!], [['v', '1'], ['cid', 'a=b']]);
    assert.equal(parseTxt([{}]), undefined);
  });
});

describe('DiscoveryCache', () => {
  const now = 1_000_000;

  it('turns PTR + SRV + TXT + A into one server, preferring the address the packet came from', () => {
    const c = new DiscoveryCache();
    c.add(response([rec.ptr()], [rec.srv(), rec.txt(), rec.a('192.168.1.20'), rec.a('10.9.0.5')]), '10.9.0.5', now);
    c.add(response([rec.ptr()], [rec.srv(), rec.txt(), rec.a('192.168.1.20'), rec.a('10.9.0.5')]), '10.9.0.5', now + 10); // a duplicate
    assert.deepEqual(c.servers(now), [
      { addr: 'https://10.9.0.5:7443', host: 'node-1.local', address: '10.9.0.5', addresses: ['192.168.1.20', '10.9.0.5'], port: 7443, clusterId: 'c-1', caPin: PIN, instance: 'nexus-node-1-7443' },
    ]);
    assert.equal(c.servers(now, 'c-1').length, 1);
    assert.equal(c.servers(now, 'other').length, 0);
    assert.equal(c.servers(now + 121_000).length, 0, 'expired');
    assert.deepEqual(c.knownAnswers(now).map(dataOf), [FQDN]);
  });

  it('ignores malformed, unrelated and garbage records and keeps the good ones', () => {
    const c = new DiscoveryCache();
    const bad = (name: string) => `${name}.${SERVICE_TYPE}`;
    for (const junk of [null, 42, 'x', { answers: 'nope' }, { answers: [null, 7, 'x', {}, { name: 5 }] }]) c.add(junk, undefined, now);
    c.add(
      response([
        rec.ptr(bad('no-pin')), rec.srv(1, 'h.local', bad('no-pin')), rec.txt(['v=1', 'cid=x'], bad('no-pin')),
        rec.ptr(bad('bad-pin')), rec.srv(1, 'h.local', bad('bad-pin')), rec.txt(['v=1', 'cid=x', 'pin=zz'], bad('bad-pin')),
        rec.ptr(bad('v2')), rec.srv(1, 'h.local', bad('v2')), rec.txt(['v=2', 'cid=x', `pin=${PIN}`], bad('v2')),
        rec.ptr(bad('no-cid')), rec.srv(1, 'h.local', bad('no-cid')), rec.txt(['v=1', `pin=${PIN}`], bad('no-cid')),
        rec.ptr(bad('port0')), rec.srv(0, 'h.local', bad('port0')), rec.txt(undefined, bad('port0')),
        rec.ptr(bad('txt-obj')), rec.srv(1, 'h.local', bad('txt-obj')), rec.txt({ not: 'txt' }, bad('txt-obj')),
        rec.ptr(bad('srv-null')), { ...rec.srv(1, 'h.local', bad('srv-null')), data: null }, rec.txt(undefined, bad('srv-null')),
        rec.ptr(bad('no-a')), rec.srv(1, 'nowhere.local', bad('no-a')), rec.txt(undefined, bad('no-a')),
        rec.ptr(bad('neg-ttl')), rec.srv(1, 'h.local', bad('neg-ttl'), -5), rec.txt(undefined, bad('neg-ttl')),
        rec.ptr('_nexus._tcp.local'), rec.ptr('elsewhere.local'),
        { ...rec.ptr(bad('wrong-owner')), name: '_http._tcp.local' },
        rec.a('not-an-ip', 'h.local'), rec.a('1.2.3.400', 'h.local'), rec.a('10.0.0.9', 'h.local'),
        { ...rec.a('10.0.0.8', 'h.local'), class: 'CH' },
        rec.ptr(), rec.srv(), rec.txt(), rec.a(),
      ]),
      '192.168.1.20',
      now,
    );
    assert.deepEqual(c.servers(now).map((s) => s.instance), ['nexus-node-1-7443']);
    assert.deepEqual(c.missing(now).map((q) => `${q.name} ${q.type}`).sort(), [
      `bad-pin.${SERVICE_TYPE} TXT`, `nowhere.local A`, `no-cid.${SERVICE_TYPE} TXT`, `neg-ttl.${SERVICE_TYPE} SRV`, `no-pin.${SERVICE_TYPE} TXT`,
      `port0.${SERVICE_TYPE} SRV`, `srv-null.${SERVICE_TYPE} SRV`, `txt-obj.${SERVICE_TYPE} TXT`, `v2.${SERVICE_TYPE} TXT`,
    ].sort());
  });

  it('forgets a server on goodbye (TTL 0) and asks for what is missing', () => {
    const c = new DiscoveryCache();
    c.add(response([rec.ptr()]), undefined, now);
    assert.deepEqual(c.missing(now).map((q) => q.type), ['SRV', 'TXT']);
    c.add(response([rec.srv(), rec.txt()]), undefined, now);
    assert.deepEqual(c.missing(now).map((q) => `${q.name} ${q.type}`), ['node-1.local A']);
    c.add(response([rec.a()]), undefined, now);
    assert.equal(c.servers(now).length, 1);
    c.add(response([rec.ptr(FQDN, 0)]), undefined, now + 1);
    assert.equal(c.servers(now + 1).length, 0);
  });

  it('cache-flush replaces addresses older than one second, keeps newer ones (RFC 6762 §10.2)', () => {
    const c = new DiscoveryCache();
    c.add(response([rec.ptr(), rec.srv(), rec.txt(), rec.a('192.168.1.20')]), undefined, now);
    c.add(response([rec.a('192.168.1.21')]), undefined, now + 500);
    assert.deepEqual(c.servers(now + 500)[0]!.addresses, ['192.168.1.20', '192.168.1.21']);
    c.add(response([rec.a('192.168.1.22')]), undefined, now + 5000);
    assert.deepEqual(c.servers(now + 6001)[0]!.addresses, ['192.168.1.22']);
  });
});

describe('announce + discover on 127.0.0.1', () => {
  // A private mDNS port per run: isolated from real responders and from parallel runs.
  const mdnsPort = 20_000 + Math.floor(Math.random() * 40_000);
  const lo = { interface: '127.0.0.1', mdnsPort };
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  it('sends an unsolicited announcement, answers a browse, says goodbye on stop', async () => {
    const seen: mdns.ResponsePacket[] = [];
    const listener = mdns({ port: mdnsPort, interface: '127.0.0.1', bind: '0.0.0.0' });
    cleanup.push(() => new Promise<void>((r) => listener.destroy(() => r())));
    listener.on('response', (p) => seen.push(p));
    await new Promise((r) => listener.once('ready', r));

    const a = announce({ ...lo, port: 7443, clusterId: 'c-1', caPin: PIN, hostname: 'node-1' });
    cleanup.push(() => a.stop());
    await a.ready;
    const t0 = Date.now();
    const found = await discover({ ...lo, timeoutMs: 1500 });
    assert.ok(Date.now() - t0 < 2500);
    assert.deepEqual(found, [
      { addr: 'https://127.0.0.1:7443', host: 'node-1.local', address: '127.0.0.1', addresses: ['127.0.0.1'], port: 7443, clusterId: 'c-1', caPin: PIN, instance: 'nexus-node-1-7443' },
    ]);
    const first = seen[0]!;
    assert.deepEqual(first.answers.map((r) => r.type).sort(), ['A', 'PTR', 'PTR', 'SRV', 'TXT'], 'the announcement carries every record');
    assert.ok((first as unknown as { flag_aa: boolean }).flag_aa, 'responses are authoritative');
    await a.stop();
    await a.stop();
    await new Promise((r) => setTimeout(r, 100));
    const bye = seen.at(-1)!;
    assert.ok(bye.answers.length >= 4 && bye.answers.every((r) => (r as { ttl?: number }).ttl === 0), 'goodbye: every record with TTL 0');
  });

  it('filters by cluster id, returns early with limit, survives garbage and hostile packets', async () => {
    const a = announce({ ...lo, port: 7001, clusterId: 'mine', caPin: PIN, hostname: 'srv-a' });
    const b = announce({ ...lo, port: 7002, clusterId: 'theirs', caPin: PIN2, hostname: 'srv-b' });
    cleanup.push(() => a.stop(), () => b.stop());
    await Promise.all([a.ready, b.ready]);

    // A hostile neighbour: raw garbage, truncated DNS, and well-formed responses with bad records.
    const raw = createSocket({ type: 'udp4', reuseAddr: true });
    cleanup.push(() => new Promise<void>((r) => raw.close(() => r())));
    await new Promise<void>((r) => raw.bind(0, () => r()));
    raw.setMulticastInterface('127.0.0.1');
    const rogue = mdns({ port: mdnsPort, interface: '127.0.0.1', bind: '0.0.0.0' });
    cleanup.push(() => new Promise<void>((r) => rogue.destroy(() => r())));
    const hostile = setInterval(() => {
      for (const junk of [Buffer.from('not dns at all'), Buffer.alloc(0), Buffer.from([0, 0, 0x84, 0, 0, 0, 0, 9, 0, 0, 0, 0, 3, 0x61])]) raw.send(junk, mdnsPort, MDNS_GROUP);
      rogue.respond([
        { name: SERVICE_TYPE, type: 'PTR', ttl: 120, data: `evil.${SERVICE_TYPE}` },
        { name: `evil.${SERVICE_TYPE}`, type: 'TXT', ttl: 120, data: ['v=1', 'cid=mine', 'pin=not-a-pin'] },
        { name: `evil.${SERVICE_TYPE}`, type: 'SRV', ttl: 120, data: { port: 1, target: 'evil.local' } },
        { name: 'evil.local', type: 'A', ttl: 120, data: '127.0.0.66' },
      ]);
    }, 100);
    cleanup.push(() => clearInterval(hostile));

    const [all, mine, none] = await Promise.all([
      discover({ ...lo, timeoutMs: 1500 }),
      discover({ ...lo, timeoutMs: 1500, clusterId: 'mine' }),
      discover({ ...lo, timeoutMs: 1500, clusterId: 'nobody' }),
    ]);
    clearInterval(hostile);
    assert.deepEqual(all.map((s) => [s.instance, s.port, s.clusterId, s.caPin]), [
      ['nexus-srv-a-7001', 7001, 'mine', PIN],
      ['nexus-srv-b-7002', 7002, 'theirs', PIN2],
    ]);
    assert.deepEqual(mine.map((s) => s.addr), ['https://127.0.0.1:7001']);
    assert.deepEqual(none, []);

    const t0 = Date.now();
    const one = await discover({ ...lo, timeoutMs: 5000, clusterId: 'theirs', limit: 1 });
    assert.equal(one.length, 1);
    assert.ok(Date.now() - t0 < 2000, 'limit resolves before the timeout');
    await Promise.all([a.stop(), b.stop()]);
  });

  it('rejects bad options up front and stops early on abort', async () => {
    assert.throws(() => announce({ port: 70000, clusterId: 'c', caPin: PIN, mdnsPort }), TypeError);
    await assert.rejects(discover({ interface: 'no-such-if0', mdnsPort }), /no IPv4 interface/);
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    assert.deepEqual(await discover({ ...lo, timeoutMs: 5000, clusterId: 'nobody', signal: ac.signal }), []);
    assert.ok(Date.now() - t0 < 2000);
  });
});
