// LAN discovery end to end, with the real binaries: `nexus server --host <A>` in namespace A
// announces _nexus._tcp over mDNS (the default off loopback), and `nexus agent --discover` in
// namespace B — no --join — finds it, checks the CA pin from its join token, joins and heartbeats.
// A join token of another cluster (another CA pin) makes --discover fail with NEXUS_E_CONFIG
// naming `discover` within --discover-timeout. The two namespaces hang off a bridge in a third
// (one L2 segment, like a home LAN); mDNS on 5353 stays private to them. They have no default and
// no multicast route, on purpose: the server announces on the interface of its --host address and
// the agent browses on every addressed interface, so neither depends on the kernel's multicast
// route (without those two defaults, both sends failed here with ENETUNREACH and nothing was found).
// Needs root and `ip netns`; skipped otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEXUS_BIN } from '../src/testing/cli.js';
import { agentEnv } from '../src/testing/cluster.js';
import { createNetLab, netnsSkipReason, type NetLab, type NetNode } from '../src/testing/netns.js';

const skipReason = netnsSkipReason();
const PORT = 7443;

describe('nexus agent --discover across two network namespaces', { timeout: 90_000 }, () => {
  let dir: string;
  let lab: NetLab;
  let a: NetNode;
  let b: NetNode;
  let url: string;
  let token: string;
  let adminEnv: NodeJS.ProcessEnv;

  before(async () => {
    if (skipReason) return;
    dir = mkdtempSync(join(tmpdir(), 'nexus-discover-'));
    lab = await createNetLab({ names: ['srv', 'agt'], link: 'bridge', multicastRoute: false });
    [a, b] = lab.nodes as [NetNode, NetNode];
    const serverDir = join(dir, 'server');
    const env = { NEXUS_LOG_LEVEL: 'warn', HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg'), XDG_DATA_HOME: join(dir, 'xdg') };
    const server = await a.spawnReady(process.execPath, [NEXUS_BIN, 'server', '--host', a.addr, '--port', String(PORT), '--data-dir', serverDir],
      /API:\s+(https:\/\/\S+)[\s\S]*?Join a device/, { env, timeoutMs: 30_000 });
    url = server.match[1]!;
    assert.match(server.output(), /mDNS:\s+announcing _nexus\._tcp as \S+/, `the server announces itself:\n${server.output()}`);
    adminEnv = { ...env, NEXUS_ADDR: url, NEXUS_CA: join(serverDir, 'ca.crt'), NEXUS_TOKEN: (await a.run('cat', [join(serverDir, 'admin-token')])).stdout.trim() };
    const minted = await a.run(process.execPath, [NEXUS_BIN, 'tokens', 'create', '--role', 'agent', '--json'], { env: adminEnv });
    assert.equal(minted.code, 0, minted.stderr);
    token = (JSON.parse(minted.stdout) as { token: string }).token;
  });

  after(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the server announced in A, prints what it discovered, joins and shows up ready', async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.equal(url, `https://${a.addr}:${PORT}`);
    const agent = await b.spawnReady(process.execPath, [NEXUS_BIN, 'agent', '--discover', '--token', token, '--data-dir', join(dir, 'agent-1'), '--name', 'found-me', '--discover-timeout', '5000'],
      /NEXUS agent ready: device (\S+)/, { env: agentEnv(dir), timeoutMs: 30_000 });
    const out = agent.output();
    assert.match(out, new RegExp(`^discovered https://${a.addr.replaceAll('.', '\\.')}:${PORT} \\(\\S+\\.local\\)$`, 'm'), out);
    assert.match(out, new RegExp(`joined ${url.replaceAll('.', '\\.')} as device ${agent.match[1]}`), out);
    const id = agent.match[1]!;
    // The server sees it: `nexus device show` from A.
    const deadline = Date.now() + 10_000;
    let state = '';
    while (Date.now() < deadline) {
      const shown = await a.run(process.execPath, [NEXUS_BIN, 'device', 'show', id, '--json'], { env: adminEnv });
      assert.equal(shown.code, 0, shown.stderr);
      const d = JSON.parse(shown.stdout) as { name: string; state: string };
      assert.equal(d.name, 'found-me');
      state = d.state;
      if (state === 'ready') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(state, 'ready');
  });

  it('a join token of another cluster (other CA pin) fails with NEXUS_E_CONFIG naming discover, within the timeout', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const foreign = token.replace(/^NX1[0-9a-f]{64}::/, `NX1${'b2'.repeat(32)}::`);
    assert.notEqual(foreign, token);
    const agentDir = join(dir, 'agent-foreign');
    const started = Date.now();
    const r = await b.run(process.execPath, [NEXUS_BIN, 'agent', '--discover', '--token', foreign, '--data-dir', agentDir, '--discover-timeout', '2000'], { env: agentEnv(dir), timeoutMs: 20_000 });
    const ms = Date.now() - started;
    console.log(`--discover with a foreign token failed after ${ms} ms (timeout 2000 ms + process start): ${r.stderr.trim()}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /error NEXUS_E_CONFIG: .*within 2000 ms.*\(field: discover\)/);
    // It saw our server (whose pin is not the token's) and says so; nothing was joined.
    assert.match(r.stderr, new RegExp(`saw https://${a.addr.replaceAll('.', '\\.')}:${PORT} \\(pin `));
    assert.doesNotMatch(r.stdout, /discovered|joined/);
    assert.equal(existsSync(join(agentDir, 'credential.json')), false);
    assert.ok(ms < 2000 + 8000, `bounded by the discover timeout (${ms} ms)`);
  });
});
