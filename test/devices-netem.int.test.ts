// Device health on a bad network: a real `nexus server` (TLS) in namespace A, five real `nexus
// agent`s in namespace B, every packet between them delayed 200 ± 50 ms (normal) and 1 % of them
// dropped — in EACH direction, since netem acts where packets leave (both ends of the link), so the
// round trip is ~400 ms ± 70 ms. ADR 005's thresholds (unreachable 2.5 s, down 4 s) must absorb
// that: over the observed window no healthy agent may be `down`; `unreachable` is counted and
// printed. Then a control proves the observer can see `down`: one agent is SIGKILLed and must be
// `down` within 5 s of the last heartbeat the server got from it (ADR 005's bound), and within 5 s
// of the kill plus the one-way delay (mean + 4σ) plus one TCP retransmission timeout: a heartbeat
// sent just before the kill can still arrive that late (the kernel keeps retransmitting a dead
// process's unacknowledged data), which then restarts the server's clock.
//
// The impairment is `tc qdisc … netem loss 1% delay 200ms 50ms distribution normal` on the veth
// end in each namespace. On a kernel without sch_netem (CONFIG_NET_SCH_NETEM unset) the test runs
// the same impairment in userspace instead (src/testing/netns.ts `wire` link: TUN devices joined
// by a process that drops and delays each packet like netem does); NEXUS_NETEM_EMULATE=0 skips
// then. Window: NEXUS_NETEM_SECONDS (default 45). Needs root and `ip netns`; skipped otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NEXUS_BIN } from '../src/testing/cli.js';
import { agentEnv } from '../src/testing/cluster.js';
import { createNetLab, netemSkipReason, netnsSkipReason, wireSkipReason, type NetLab } from '../src/testing/netns.js';

const AGENTS = 5;
const LOSS_PCT = 1;
const DELAY_MS = 200;
const JITTER_MS = 50;
const WINDOW_S = Number(process.env.NEXUS_NETEM_SECONDS ?? 45);
const NETEM = `loss ${LOSS_PCT}% delay ${DELAY_MS}ms ${JITTER_MS}ms distribution normal`;

/** 'netem', 'wire' (userspace emulation) or why neither can run. */
function pickMode(): { mode: 'netem' | 'wire' } | { skip: string } {
  const ns = netnsSkipReason();
  if (ns) return { skip: ns };
  const netem = netemSkipReason();
  if (!netem) return { mode: 'netem' };
  if (process.env.NEXUS_NETEM_EMULATE === '0') return { skip: `${netem} (and NEXUS_NETEM_EMULATE=0)` };
  const wire = wireSkipReason();
  return wire ? { skip: `${netem}; userspace emulation unavailable too: ${wire}` } : { mode: 'wire' };
}

// Polls GET /v1/devices from inside A (local, unimpaired) and prints one JSON line per answer:
// {"t":<ms>,"s":{"<id>":"<state>"},"h":{"<id>":<lastHeartbeatAt ms>}} or {"t":<ms>,"error":"…"}. `interval N` on stdin changes the
// period; EOF on stdin ends it.
const POLLER = String.raw`
import https from 'node:https';
import { readFileSync } from 'node:fs';
const { P_URL, P_CA, P_TOKEN } = process.env;
let every = Number(process.env.P_MS);
process.stdin.on('data', (d) => { const m = /interval (\d+)/.exec(String(d)); if (m) every = Number(m[1]); });
process.stdin.on('end', () => process.exit(0));
const agent = new https.Agent({ keepAlive: true, ca: readFileSync(P_CA) });
const get = () => new Promise((resolve, reject) => {
  const req = https.get(P_URL + '/v1/devices', { agent, headers: { authorization: 'Bearer ' + P_TOKEN }, timeout: 3000 }, (res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(res.statusCode + ' ' + body))));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', reject);
});
for (;;) {
  const t0 = Date.now();
  try {
    const { items } = await get();
    process.stdout.write(JSON.stringify({ t: Date.now(), s: Object.fromEntries(items.map((d) => [d.id, d.state])), h: Object.fromEntries(items.map((d) => [d.id, Date.parse(d.lastHeartbeatAt)])) }) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ t: Date.now(), error: String(err.message) }) + '\n');
  }
  await new Promise((r) => setTimeout(r, Math.max(0, every - (Date.now() - t0))));
}
`;

interface Poll {
  t: number;
  s?: Record<string, string>;
  h?: Record<string, number>;
  error?: string;
}

const picked = pickMode();

describe(`device health under ${LOSS_PCT}% loss and ${DELAY_MS}±${JITTER_MS} ms delay each way`, { timeout: (WINDOW_S + 150) * 1000 }, () => {
  let dir: string;
  let lab: NetLab;
  let poller: ChildProcess;
  const polls: Poll[] = [];
  const agents: { child: ChildProcess; id: string; output: () => string }[] = [];

  /** Resolves with the first poll at or after `since` that satisfies `pred`, or rejects after `ms`. */
  const waitPoll = (what: string, since: number, ms: number, pred: (p: Poll) => boolean): Promise<Poll> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const p = polls.find((q) => q.t >= since && pred(q));
        if (p) {
          clearInterval(timer);
          resolve(p);
        } else if (Date.now() - since > ms) {
          clearInterval(timer);
          reject(new Error(`timed out after ${ms} ms waiting for ${what}; last poll ${JSON.stringify(polls.at(-1))}`));
        }
      };
      const timer = setInterval(check, 50);
    });

  before(async () => {
    if ('skip' in picked) return;
    dir = mkdtempSync(join(tmpdir(), 'nexus-netem-'));
    lab = picked.mode === 'netem'
      ? await createNetLab({ names: ['srv', 'agt'], link: 'veth', multicastRoute: false })
      : await createNetLab({ names: ['srv', 'agt'], link: 'wire', multicastRoute: false, wire: { lossPct: LOSS_PCT, delayMs: DELAY_MS, jitterMs: JITTER_MS } });
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    // Agents join over the impaired link too, as devices on a bad network would.
    if (picked.mode === 'netem') for (const n of [a, b]) n.netem(NETEM);

    const home = dir;
    const serverDir = join(dir, 'server');
    const serverEnv = { NEXUS_LOG_LEVEL: 'warn', HOME: home, XDG_CONFIG_HOME: join(home, 'cfg'), XDG_DATA_HOME: join(home, 'xdg') };
    const server = await a.spawnReady(process.execPath, [NEXUS_BIN, 'server', '--host', a.addr, '--port', '7443', '--data-dir', serverDir, '--no-mdns'], /API:\s+(https:\/\/\S+)[\s\S]*?Join a device/, { env: serverEnv, timeoutMs: 30_000 });
    const url = server.match[1]!;
    assert.equal(url, `https://${a.addr}:7443`);
    const adminEnv = { ...serverEnv, NEXUS_ADDR: url, NEXUS_CA: join(serverDir, 'ca.crt'), NEXUS_TOKEN: (await a.run('cat', [join(serverDir, 'admin-token')])).stdout.trim() };
    const minted = await a.run(process.execPath, [NEXUS_BIN, 'tokens', 'create', '--role', 'agent', '--json'], { env: adminEnv });
    assert.equal(minted.code, 0, minted.stderr);
    const { token } = JSON.parse(minted.stdout) as { token: string };

    poller = a.spawn(process.execPath, ['--input-type=module', '-e', POLLER], { env: { P_URL: url, P_CA: adminEnv.NEXUS_CA, P_TOKEN: adminEnv.NEXUS_TOKEN, P_MS: '500' } });
    let buf = '';
    poller.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l) polls.push(JSON.parse(l) as Poll);
    });

    const started = await Promise.all(Array.from({ length: AGENTS }, (_, i) =>
      b.spawnReady(process.execPath, [NEXUS_BIN, 'agent', '--join', url, '--token', token, '--data-dir', join(dir, `agent-${i}`), '--name', `netem-${i}`], /NEXUS agent ready: device (\S+)/, { env: agentEnv(home), timeoutMs: 60_000 })));
    for (const s of started) agents.push({ child: s.child, id: s.match[1]!, output: s.output });
    const ids = agents.map((x) => x.id);
    await waitPoll(`all ${AGENTS} agents ready`, Date.now(), 30_000, (p) => ids.every((id) => p.s?.[id] === 'ready'));
  });

  after(async () => {
    poller?.stdin?.end();
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`no healthy agent is marked down over ${WINDOW_S} s; a SIGKILLed one is down within 5 s of its last heartbeat`, async (t) => {
    if ('skip' in picked) return t.skip(picked.skip);
    const ids = agents.map((x) => x.id);
    const from = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const window = polls.filter((p) => p.t >= from && p.t < from + WINDOW_S * 1000);
    const seen = Object.fromEntries(ids.map((id) => [id, { ready: 0, unreachable: 0, down: 0, other: 0, episodes: 0 }]));
    const prev: Record<string, string | undefined> = {};
    let errors = 0;
    for (const p of window) {
      if (!p.s) {
        errors++;
        continue;
      }
      for (const id of ids) {
        const st = p.s[id] ?? 'missing';
        const c = seen[id]!;
        if (st === 'ready' || st === 'unreachable' || st === 'down') c[st]++;
        else c.other++;
        if (st === 'unreachable' && prev[id] !== 'unreachable') c.episodes++;
        prev[id] = st;
      }
    }
    const sum = (k: 'ready' | 'unreachable' | 'down' | 'other' | 'episodes') => ids.reduce((n, id) => n + seen[id]![k], 0);
    const how = picked.mode === 'netem' ? `tc netem "${NETEM}" on both veth ends` : `userspace wire (no sch_netem in this kernel), same loss/delay/jitter each way; packets ${JSON.stringify(lab.wireStats())}`;
    console.log(`impairment: ${how}`);
    console.log(`${AGENTS} agents observed ${WINDOW_S} s: ${window.length} polls (${errors} failed); agent-polls ready ${sum('ready')}, unreachable ${sum('unreachable')} (${sum('episodes')} episodes), down ${sum('down')}, other ${sum('other')}`);
    for (const x of agents) {
      const failures = x.output().match(/reaching \S+ failed \(([^)]*)/g) ?? [];
      console.log(`  ${x.id}: ${JSON.stringify(seen[x.id])}; heartbeat failures reported by the agent: ${failures.length}${failures.length ? ` (${[...new Set(failures)].join('; ')})` : ''}`);
    }
    assert.ok(window.length >= WINDOW_S * 2 * 0.8, `the observer polled (${window.length} polls in ${WINDOW_S} s)`);
    assert.equal(errors, 0, 'every poll of GET /v1/devices answered');
    assert.equal(sum('down'), 0, `no healthy agent was ever down: ${JSON.stringify(seen)}`);
    assert.equal(sum('other'), 0, `every agent was listed as ready/unreachable: ${JSON.stringify(seen)}`);

    // Control: the same observer does see a dead agent go down.
    poller.stdin!.write('interval 100\n');
    const victim = agents[0]!;
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const RTO_MS = 1000;
    const limitMs = 5000 + DELAY_MS + 4 * JITTER_MS + RTO_MS;
    const down = await waitPoll(`${victim.id} down`, killedAt, limitMs + 5000, (p) => p.s?.[victim.id] === 'down');
    const unreachable = polls.find((p) => p.t >= killedAt && p.s?.[victim.id] === 'unreachable');
    const lastBeat = down.h![victim.id]!;
    console.log(`SIGKILL → unreachable after ${unreachable ? unreachable.t - killedAt : '?'} ms, down after ${down.t - killedAt} ms (limit ${limitMs} ms); `
      + `the last heartbeat reached the server ${lastBeat - killedAt} ms after the kill, down ${down.t - lastBeat} ms after it (limit 5000 ms)`);
    assert.ok(down.t - lastBeat <= 5000, `down ${down.t - lastBeat} ms after the last heartbeat (limit 5000)`);
    assert.ok(down.t - killedAt <= limitMs, `down after ${down.t - killedAt} ms (limit ${limitMs})`);
    const othersDown = polls.filter((p) => p.t >= from && ids.slice(1).some((id) => p.s?.[id] === 'down'));
    assert.equal(othersDown.length, 0, 'the other agents stayed up through the control');
  });
});
