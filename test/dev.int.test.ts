// `nexus dev` and the CLI as a user runs them: real processes, real sockets, a real SQLite file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runCli, spawnCli, stopChild } from '../src/testing/cli.js';

describe('nexus dev + CLI', () => {
  let dir: string;
  let child: ChildProcess;
  let addr: string;
  let token: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-dev-'));
    const started = await spawnCli(['dev', '--data-dir', join(dir, 'data'), '--port', '0'], /API:\s+(http:\/\/127\.0\.0\.1:\d+)[\s\S]*device:/, { NEXUS_LOG_LEVEL: 'warn' });
    child = started.child;
    addr = started.match[1]!;
    token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
    assert.ok(started.output().includes(token), 'the admin token is printed on first start');
    env = { NEXUS_ADDR: addr, NEXUS_TOKEN: token, HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg'), XDG_DATA_HOME: join(dir, 'xdg') };
  });

  after(async () => {
    if (child) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the admin token with mode 0600 and is ready', async () => {
    assert.equal(statSync(join(dir, 'data', 'admin-token')).mode & 0o777, 0o600);
    const r = await fetch(`${addr}/readyz`);
    assert.equal(r.status, 200);
  });

  it('lists this machine as a ready device with its OS, arch, cores and memory', async () => {
    const r = await runCli(['devices', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const { items } = JSON.parse(r.stdout) as { items: { id: string; name: string; state: string; capabilities: { os: { platform: string }; cpu: { arch: string; logicalCores: number }; memory: { totalBytes: number }; gpus: unknown[] } }[] };
    assert.equal(items.length, 1);
    const d = items[0]!;
    assert.equal(d.state, 'ready');
    assert.equal(d.capabilities.os.platform, process.platform);
    assert.equal(d.capabilities.cpu.arch, process.arch);
    assert.equal(d.capabilities.cpu.logicalCores, cpus().length);
    assert.equal(d.capabilities.memory.totalBytes, totalmem());
    assert.ok(Array.isArray(d.capabilities.gpus));
    const table = await runCli(['devices'], env);
    assert.match(table.stdout, /NAME\s+STATE/);
    assert.match(table.stdout, /ready/);
  });

  it('tenants and tokens round-trip through the CLI', async () => {
    assert.equal((await runCli(['tenants', 'create', 'lab'], env)).code, 0);
    const list = JSON.parse((await runCli(['tenants', 'list', '--json'], env)).stdout) as { items: { name: string }[] };
    assert.deepEqual(list.items.map((t) => t.name).sort(), ['default', 'lab']);
    const created = await runCli(['tokens', 'create', '--role', 'member', '--tenant', 'lab', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const tok = JSON.parse(created.stdout) as { token: string; id: string; role: string };
    assert.equal(tok.role, 'member');
    // The member token works, and cannot create tenants.
    const denied = await runCli(['tenants', 'create', 'nope'], { ...env, NEXUS_TOKEN: tok.token });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /NEXUS_E_FORBIDDEN/);
    const revoked = await runCli(['tokens', 'revoke', tok.id], env);
    assert.equal(revoked.code, 0);
    const after = await runCli(['devices'], { ...env, NEXUS_TOKEN: tok.token });
    assert.match(after.stderr, /NEXUS_E_BAD_TOKEN/);
    const tokens = JSON.parse((await runCli(['tokens', 'list', '--json', '--tenant', 'lab'], env)).stdout) as { items: { id: string; revokedAt?: string }[] };
    assert.ok(tokens.items.find((t) => t.id === tok.id)?.revokedAt);
  });

  it('flags beat the environment, which beats the config file', async () => {
    const cfg = join(dir, 'nexus.json');
    writeFileSync(cfg, JSON.stringify({ addr: 'http://127.0.0.1:1', token }));
    const fromFile = await runCli(['devices', '--json', '--config', cfg], { ...env, NEXUS_ADDR: '' });
    assert.equal(fromFile.code, 1, 'the file address is used when nothing overrides it');
    assert.match(fromFile.stderr, /NEXUS_E_CONNECT/);
    const envWins = await runCli(['devices', '--json', '--config', cfg], env);
    assert.equal(envWins.code, 0, envWins.stderr);
    const flagWins = await runCli(['devices', '--json', '--config', cfg, '--addr', 'http://127.0.0.1:2'], env);
    assert.match(flagWins.stderr, /127\.0\.0\.1:2/);
  });

  it('clear errors: no token, bad flag value, bad config file', async () => {
    const noTok = await runCli(['devices'], { ...env, NEXUS_TOKEN: '' });
    assert.equal(noTok.code, 1);
    assert.match(noTok.stderr, /NEXUS_E_UNAUTHENTICATED/);
    const badRole = await runCli(['tokens', 'create', '--role', 'root'], env);
    assert.equal(badRole.code, 2);
    assert.match(badRole.stderr, /use one of admin/);
    const cfg = join(dir, 'broken.json');
    writeFileSync(cfg, '{ not json');
    const badCfg = await runCli(['devices', '--config', cfg], env);
    assert.match(badCfg.stderr, /NEXUS_E_CONFIG/);
  });

  it('npx nexus runs the repository\'s own CLI, also with an empty npx cache', async () => {
    const { spawnSync } = await import('node:child_process');
    const { repoRoot } = await import('../src/testing/cli.js');
    const t0 = Date.now();
    // A fresh npm cache: nothing npx installed earlier can stand in for the local bin.
    const r = spawnSync('npx', ['--no', '--', 'nexus', '--version'], { cwd: repoRoot(), encoding: 'utf8', timeout: 60_000, env: { ...process.env, npm_config_cache: join(dir, 'npm-cache') } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).version);
    assert.ok(Date.now() - t0 < 60_000, `npx took ${Date.now() - t0} ms`);
  });

  it('restarts on the same data dir keep state and do not mint a new admin token', async () => {
    await stopChild(child);
    const again = await spawnCli(['dev', '--data-dir', join(dir, 'data'), '--port', '0'], /API:\s+(http:\/\/127\.0\.0\.1:\d+)[\s\S]*device:/);
    child = again.child;
    assert.ok(!again.output().includes(token), 'the token is shown once');
    const r = await runCli(['tenants', 'list', '--json'], { ...env, NEXUS_ADDR: again.match[1]! });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { items: { name: string }[] }).items.some((t) => t.name === 'lab'));
    const devs = JSON.parse((await runCli(['devices', '--json'], { ...env, NEXUS_ADDR: again.match[1]! })).stdout) as { items: unknown[] };
    assert.equal(devs.items.length, 1, 'the same device, not a second one');
  });
});
