import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNexusError } from '../errors/catalogue.js';
import { resolveClientConfig, resolveServerConfig } from './resolve.js';

const dir = mkdtempSync(join(tmpdir(), 'nexus-cfg-'));
const file = join(dir, 'config.json');
writeFileSync(file, JSON.stringify({ addr: 'http://file:1', token: 'file-token', port: 9001, dataDir: join(dir, 'file-data') }));
const isolated = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'none'), XDG_DATA_HOME: join(dir, 'xdg') };

test('client config: flags > env > file > defaults', () => {
  assert.equal(resolveClientConfig({}, isolated).addr, 'http://127.0.0.1:7070');
  assert.equal(resolveClientConfig({ config: file }, isolated).addr, 'http://file:1');
  assert.equal(resolveClientConfig({ config: file }, { ...isolated, NEXUS_ADDR: 'http://env:2' }).addr, 'http://env:2');
  assert.equal(resolveClientConfig({ config: file, addr: 'http://flag:3' }, { ...isolated, NEXUS_ADDR: 'http://env:2' }).addr, 'http://flag:3');
  assert.equal(resolveClientConfig({ config: file }, { ...isolated, NEXUS_TOKEN: 'env-token' }).token, 'env-token');
  assert.equal(resolveClientConfig({ config: file }, isolated).token, 'file-token');
  assert.equal(resolveClientConfig({}, { ...isolated, NEXUS_CONFIG: file }).addr, 'http://file:1', 'NEXUS_CONFIG names the file');
});

test('client config: the result is frozen', () => {
  const cfg = resolveClientConfig({}, isolated);
  assert.ok(Object.isFrozen(cfg));
});

test('server config: precedence and defaults', () => {
  const d = resolveServerConfig({}, 'dev', isolated);
  assert.equal(d.port, 7070);
  assert.equal(d.host, '127.0.0.1');
  assert.equal(d.dataDir, join(dir, 'xdg', 'nexus'));
  assert.deepEqual(d.store, { engine: 'sqlite', path: join(dir, 'xdg', 'nexus', 'state.db') });
  assert.equal(resolveServerConfig({ config: file }, 'dev', isolated).port, 9001);
  assert.equal(resolveServerConfig({ config: file }, 'dev', { ...isolated, NEXUS_PORT: '9002' }).port, 9002);
  assert.equal(resolveServerConfig({ config: file, port: '9003' }, 'dev', { ...isolated, NEXUS_PORT: '9002' }).port, 9003);
  assert.equal(resolveServerConfig({ config: file }, 'dev', isolated).dataDir, join(dir, 'file-data'));
});

test('bad configuration gets NEXUS_E_CONFIG naming the field', () => {
  const cases: [() => unknown, string][] = [
    [() => resolveServerConfig({ port: 'eighty' }, 'dev', isolated), 'port'],
    [() => resolveServerConfig({ port: '70000' }, 'dev', isolated), 'port'],
    [() => resolveServerConfig({ host: '0.0.0.0' }, 'dev', isolated), 'host'],
    [() => resolveServerConfig({ store: 'mysql' }, 'dev', isolated), 'store'],
    [() => resolveServerConfig({ store: 'etcd' }, 'server', isolated), 'etcd'],
    [() => resolveClientConfig({ addr: 'ftp://x' }, isolated), 'addr'],
    [() => resolveClientConfig({ config: join(dir, 'missing.json') }, isolated), 'config'],
    [() => resolveClientConfig({ ca: join(dir, 'missing.pem') }, isolated), 'ca'],
  ];
  for (const [fn, field] of cases) {
    assert.throws(fn, (e) => isNexusError(e, 'NEXUS_E_CONFIG') && e.field === field, `expected a config error on ${field}`);
  }
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ adress: 'typo' }));
  assert.throws(() => resolveClientConfig({ config: unknown }, isolated), (e) => isNexusError(e, 'NEXUS_E_CONFIG') && e.field === 'adress');
});
