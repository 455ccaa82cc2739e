import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNexusError } from '../errors/catalogue.js';
import { startServer, type RunningServer } from '../server/server.js';
import { SYSTEM } from '../tenancy/tokens.js';
import type { ProbeResult } from './agent.js';
import { joinCluster, loadCredential } from './join.js';

const probe = async (): Promise<ProbeResult> => ({ capabilities: { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 2 }, memory: { totalBytes: 1 }, gpus: [] }, warnings: [] });

describe('joining over TLS (agent side)', () => {
  let dir: string;
  let server: RunningServer;
  const verified: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-join-'));
    server = await startServer({ dataDir: join(dir, 'server'), host: '127.0.0.1', port: 0, store: { engine: 'sqlite', path: join(dir, 'server', 'state.db') }, logLevel: 'silent', tls: true });
    // Every bearer the server is shown goes through verify: record them.
    const tokens = server.ctx.tokens;
    const verify = tokens.verify.bind(tokens);
    tokens.verify = (bearer: string) => {
      verified.push(bearer);
      return verify(bearer);
    };
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const joinToken = async () => (await server.ctx.tokens.create(SYSTEM, { role: 'agent' })).token;

  it('checks the pin, joins, and saves a 0600 credential with the CA', async () => {
    const token = await joinToken();
    assert.ok(token.startsWith(`NX1${server.ca!.pin}::`));
    const cred = await joinCluster({ server: server.url, token, dataDir: join(dir, 'a1'), name: 'a1', probe });
    assert.equal(statSync(join(dir, 'a1', 'credential.json')).mode & 0o777, 0o600);
    assert.deepEqual(loadCredential(join(dir, 'a1')), cred);
    assert.equal(cred.pin, server.ca!.pin);
    const p = await server.ctx.tokens.verify(cred.token);
    assert.equal(p.deviceId, cred.deviceId);
  });

  it('a wrong pin is refused before the token is sent', async () => {
    const token = await joinToken();
    const secret = token.split('.').pop()!;
    const wrong = token.replace(/^NX1(.)/, (_, c: string) => `NX1${c === '0' ? '1' : '0'}`);
    const before = verified.length;
    const devices = (await server.ctx.devices.list(SYSTEM)).length;
    await assert.rejects(joinCluster({ server: server.url, token: wrong, dataDir: join(dir, 'a2'), probe }), (e) => isNexusError(e, 'NEXUS_E_JOIN_PIN_MISMATCH'));
    assert.equal(verified.length, before, 'the server never saw a token');
    assert.ok(!verified.some((v) => v.includes(secret)));
    assert.equal((await server.ctx.devices.list(SYSTEM)).length, devices);
    assert.equal(loadCredential(join(dir, 'a2')), undefined);
  });

  it('plain HTTP only on loopback, and never with a pinned token', async () => {
    const token = await joinToken();
    await assert.rejects(joinCluster({ server: 'http://192.0.2.1:7070', token, dataDir: join(dir, 'a3'), probe }), (e) => isNexusError(e, 'NEXUS_E_CONFIG') && /loopback/.test(e.message));
    await assert.rejects(joinCluster({ server: `http://127.0.0.1:${server.port}`, token, dataDir: join(dir, 'a3'), probe }), (e) => isNexusError(e, 'NEXUS_E_CONFIG') && /https/.test(e.message));
    await assert.rejects(joinCluster({ server: server.url, token: token.replace(/^NX1[0-9a-f]{64}::/, 'nxt_'), dataDir: join(dir, 'a3'), probe }), (e) => isNexusError(e, 'NEXUS_E_CONFIG'));
  });
});
