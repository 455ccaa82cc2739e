// Joining with real processes: `nexus server` (TLS, cluster CA), `nexus agent`, the CLI.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueServerCert, serverNames } from '../src/cluster/ca.js';
import { runCli, stopChild } from '../src/testing/cli.js';
import {
  agentEnv, createJoinToken, exited, startAgentProcess, startServerProcess, waitFor, type AgentProcess, type ServerProcess,
} from '../src/testing/cluster.js';

interface Seen {
  method?: string;
  url?: string;
  headers: Record<string, unknown>;
  body: string;
}

/** A TLS server with a certificate from another CA that records everything it is sent. */
async function startImpostor(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const now = Date.now();
  const ca = await createCa(now, 'impostor');
  const leaf = await issueServerCert(ca, serverNames('127.0.0.1'), now);
  const seen: Seen[] = [];
  const srv = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/v1/join/ca' ? JSON.stringify({ ca: ca.certPem, pin: ca.pin }) : '{}');
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  return { url: `https://127.0.0.1:${port}`, seen, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}

describe('nexus server + nexus agent: joining', () => {
  let dir: string;
  let server: ServerProcess;
  const agents: AgentProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-join-'));
    server = await startServerProcess(join(dir, 'server'), 0, [], dir);
  });

  after(async () => {
    for (const a of agents) await stopChild(a.child);
    if (server) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('first start makes the cluster CA (key 0600) and serves TLS with a certificate for loopback, localhost and the host name', async () => {
    const caDir = join(dir, 'server');
    assert.equal(statSync(join(caDir, 'ca.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(caDir, 'admin-token')).mode & 0o777, 0o600);
    const caPem = readFileSync(join(caDir, 'ca.crt'), 'utf8');
    assert.equal(server.pin, createHash('sha256').update(new X509Certificate(caPem).raw).digest('hex'), 'the printed pin is the SHA-256 of the CA DER');
    const leaf = new X509Certificate(readFileSync(join(caDir, 'server.crt')));
    assert.ok(leaf.checkIssued(new X509Certificate(caPem)));
    assert.ok(leaf.checkIP('127.0.0.1') && leaf.checkHost('localhost') && leaf.checkHost(hostname()));
    // The CLI reaches it with NEXUS_CA; without the CA, TLS verification fails.
    const ok = await runCli(['devices', '--json'], server.env);
    assert.equal(ok.code, 0, ok.stderr);
    const untrusted = await runCli(['devices', '--json'], { ...server.env, NEXUS_CA: '' });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /NEXUS_E_CONNECT/);
  });

  it('`tokens create --role agent --json` prints a join token NX1<pin>::<id>.<secret>', async () => {
    const { token, id } = await createJoinToken(server);
    assert.match(token, new RegExp(`^NX1${server.pin}::${id}\\.[A-Za-z0-9_-]{43}$`));
  });

  it('an agent joins, keeps a 0600 credential, shows up ready, and reuses the credential after a restart', async () => {
    const { token } = await createJoinToken(server);
    const aDir = join(dir, 'agent-1');
    const a1 = await startAgentProcess(aDir, dir, { url: server.url, token, name: 'agent-one' });
    assert.equal(statSync(join(aDir, 'credential.json')).mode & 0o777, 0o600);
    const cred = JSON.parse(readFileSync(join(aDir, 'credential.json'), 'utf8')) as { deviceId: string; token: string; pin: string };
    assert.equal(cred.deviceId, a1.deviceId);
    assert.equal(cred.pin, server.pin);
    assert.ok(!cred.token.includes(token.split('.').pop()!), 'the device credential is its own, not the join token');
    const d = await server.client.devices.get(a1.deviceId);
    assert.equal(d.name, 'agent-one');
    assert.equal(d.state, 'ready');
    assert.equal(d.capabilities.os.platform, process.platform);
    const tokens = await server.client.tokens.list();
    assert.equal(tokens.items.find((t) => t.id === d.credentialTokenId)?.deviceId, a1.deviceId, 'the credential is bound to the device');
    // Restart: no --join, no --token; the saved credential is used, and it is the same device.
    await stopChild(a1.child);
    const again = await startAgentProcess(aDir, dir);
    agents.push(again);
    assert.equal(again.deviceId, a1.deviceId);
    assert.equal((await server.client.devices.list()).items.length, 1);
  });

  it('several agents run on one machine with their own data dirs', async () => {
    const { token } = await createJoinToken(server);
    const a2 = await startAgentProcess(join(dir, 'agent-2'), dir, { url: server.url, token, name: 'agent-two' });
    agents.push(a2);
    const { items } = await server.client.devices.list();
    assert.equal(items.length, 2);
    assert.equal(new Set(items.map((d) => d.id)).size, 2);
  });

  it('a wrong pin is refused before the secret is sent', async () => {
    const { token } = await createJoinToken(server);
    const secret = token.split('.').pop()!;
    const impostor = await startImpostor();
    try {
      // A server with another CA (as a man in the middle would be): the agent fetches the CA,
      // compares pins, and leaves without sending anything else.
      const r = await runCli(['agent', '--join', impostor.url, '--token', token, '--data-dir', join(dir, 'agent-x')], agentEnv(dir));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /NEXUS_E_JOIN_PIN_MISMATCH/);
      assert.equal(impostor.seen.length, 1, 'one request only');
      assert.equal(impostor.seen[0]!.method, 'GET');
      assert.equal(impostor.seen[0]!.url, '/v1/join/ca');
      assert.equal(impostor.seen[0]!.headers.authorization, undefined);
      const everything = JSON.stringify(impostor.seen);
      assert.ok(!everything.includes(secret), 'the secret never reached the impostor');
    } finally {
      await impostor.close();
    }
    // The real server with a token whose pin was tampered with: refused too, nothing joins.
    const tampered = token.replace(/^NX1(.)/, (_, c: string) => `NX1${c === 'f' ? 'e' : 'f'}`);
    const r = await runCli(['agent', '--join', server.url, '--token', tampered, '--data-dir', join(dir, 'agent-y')], agentEnv(dir));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /NEXUS_E_JOIN_PIN_MISMATCH/);
    assert.equal((await server.client.devices.list()).items.length, 2);
  });

  it('a revoked or expired join token is refused', async () => {
    const { token, id } = await createJoinToken(server);
    assert.equal((await runCli(['tokens', 'revoke', id], server.env)).code, 0);
    const revoked = await runCli(['agent', '--join', server.url, '--token', token, '--data-dir', join(dir, 'agent-r')], agentEnv(dir));
    assert.equal(revoked.code, 1);
    assert.match(revoked.stderr, /NEXUS_E_BAD_TOKEN.*revoked/);
    const short = await createJoinToken(server, ['--ttl', '1']);
    const { items } = await server.client.tokens.list();
    const expiresAt = Date.parse(items.find((t) => t.id === short.id)!.expiresAt!);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 50))); // expiry has no event to wait on
    const expired = await runCli(['agent', '--join', server.url, '--token', short.token, '--data-dir', join(dir, 'agent-e')], agentEnv(dir));
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /NEXUS_E_BAD_TOKEN.*expired/);
    assert.equal((await server.client.devices.list()).items.length, 2);
  });

  it('a revoked device is refused: its running agent stops, and so does a restart of it', async () => {
    const a2 = agents.at(-1)!;
    const exit = exited(a2.child);
    const r = await runCli(['device', 'revoke', a2.deviceId, '--json'], server.env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { revokedAt?: string }).revokedAt);
    assert.equal(await exit, 1, 'the agent exits non-zero at its next heartbeat');
    assert.match(a2.output(), /NEXUS_E_DEVICE_REVOKED/);
    const restart = await runCli(['agent', '--data-dir', join(dir, 'agent-2')], agentEnv(dir));
    assert.equal(restart.code, 1);
    assert.match(restart.stderr, /NEXUS_E_DEVICE_REVOKED/);
    await waitFor('the revoked device to be down', async () => ((await server.client.devices.get(a2.deviceId)).state === 'down' ? true : undefined), 10_000, 100);
  });
});
