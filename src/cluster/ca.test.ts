import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNexusError } from '../errors/catalogue.js';
import { SqliteStore } from '../store/sqlite/engine.js';
import { caPin, certCovers, loadOrCreateCa, loadOrIssueServerCert, serverNames } from './ca.js';

describe('cluster CA', () => {
  let dir: string;
  let store: SqliteStore;
  const now = Date.now();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-ca-'));
    store = await SqliteStore.open({ path: join(dir, 'state.db') });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is made on first start: ca.crt + ca.key (0600), pinned by the SHA-256 of its DER', async () => {
    const ca = await loadOrCreateCa(store, dir, now);
    assert.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
    const pem = readFileSync(join(dir, 'ca.crt'), 'utf8');
    assert.equal(pem, ca.certPem);
    const x = new X509Certificate(pem);
    assert.ok(x.ca, 'basicConstraints cA');
    assert.equal(ca.pin, createHash('sha256').update(x.raw).digest('hex'));
    assert.match(ca.pin, /^[0-9a-f]{64}$/);
    // The next start (same store, same dir) keeps it.
    assert.equal((await loadOrCreateCa(store, dir, now)).pin, ca.pin);
    // Another server of the same cluster (shared store, empty data dir) gets the same CA.
    const other = mkdtempSync(join(tmpdir(), 'nexus-ca-peer-'));
    try {
      assert.equal((await loadOrCreateCa(store, other, now)).pin, ca.pin);
      assert.equal(caPin(readFileSync(join(other, 'ca.crt'), 'utf8')), ca.pin);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('refuses a data dir that holds another cluster\'s CA', async () => {
    const other = mkdtempSync(join(tmpdir(), 'nexus-ca-other-'));
    const otherStore = await SqliteStore.open({ path: join(other, 'state.db') });
    try {
      await loadOrCreateCa(otherStore, other, now);
      await assert.rejects(loadOrCreateCa(store, other, now), (e) => isNexusError(e, 'NEXUS_E_CONFIG') && /another cluster/.test(e.message));
    } finally {
      await otherStore.close();
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('issues a server certificate for the listen host, loopback, localhost and the host name; reuses it', async () => {
    const ca = await loadOrCreateCa(store, dir, now);
    const names = serverNames('192.0.2.7');
    assert.ok(names.ips.includes('192.0.2.7') && names.ips.includes('127.0.0.1'));
    assert.ok(names.dns.includes('localhost') && names.dns.includes(hostname()));
    const leaf = await loadOrIssueServerCert(ca, dir, names, now);
    assert.equal(statSync(join(dir, 'server.key')).mode & 0o777, 0o600);
    const x = new X509Certificate(leaf.certPem);
    assert.ok(x.checkIssued(new X509Certificate(ca.certPem)));
    assert.ok(x.verify(new X509Certificate(ca.certPem).publicKey));
    assert.equal(x.checkIP('192.0.2.7'), '192.0.2.7');
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x.checkHost('localhost'), 'localhost');
    assert.ok(x.checkHost(hostname()));
    assert.equal(x.checkIP('192.0.2.8'), undefined);
    // Same names: the same certificate. New names: a new one that covers them.
    assert.equal((await loadOrIssueServerCert(ca, dir, names, now)).certPem, leaf.certPem);
    const more = serverNames('192.0.2.7', ['nexus.example']);
    const again = await loadOrIssueServerCert(ca, dir, more, now);
    assert.notEqual(again.certPem, leaf.certPem);
    assert.ok(certCovers(again.certPem, ca, more, now));
    // Close to expiry: re-issued.
    assert.equal(certCovers(again.certPem, ca, more, now + 350 * 86_400_000), false);
    writeFileSync(join(dir, 'server.crt'), 'garbage');
    assert.ok(certCovers((await loadOrIssueServerCert(ca, dir, more, now)).certPem, ca, more, now));
  });
});
