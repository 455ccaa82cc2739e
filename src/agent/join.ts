/**
 * Joining a cluster, agent side (docs/adr/005-device-health.md):
 *
 *   1. GET /v1/join/ca over TLS *without* verifying the server and without sending anything
 *      secret; hash the CA's DER and compare with the pin in the join token. Differ → refuse
 *      (NEXUS_E_JOIN_PIN_MISMATCH); the token never leaves this machine.
 *   2. POST /v1/join over TLS verified with that CA (and the server's name), sending the token;
 *      the server answers with a device id and the device's own credential.
 *   3. Save both, with the CA, in DATA_DIR/credential.json (mode 0600). Restarts reuse it.
 *
 * A server without TLS (`nexus dev`) can be joined over plain HTTP on loopback only.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { NexusClient } from '../client/client.js';
import { caPin } from '../cluster/ca.js';
import { NexusError } from '../errors/catalogue.js';
import { bearerOf, parseAnyToken } from '../tenancy/join-token.js';
import { VERSION } from '../version.js';
import type { ProbeResult } from './agent.js';

/** What an agent keeps after joining. */
export interface AgentCredential {
  /** Server address the agent joined through. */
  server: string;
  deviceId: string;
  /** The device credential: an agent token bound to `deviceId`. */
  token: string;
  tokenId: string;
  /** PEM of the cluster CA (absent for a plain-HTTP dev server). */
  ca?: string;
  pin?: string;
  joinedAt: string;
}

export const CREDENTIAL_FILE = 'credential.json';

export function credentialPath(dataDir: string): string {
  return join(dataDir, CREDENTIAL_FILE);
}

/** The saved credential, or undefined when this data dir has not joined yet. */
export function loadCredential(dataDir: string): AgentCredential | undefined {
  const path = credentialPath(dataDir);
  if (!existsSync(path)) return undefined;
  let c: AgentCredential;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as AgentCredential;
  } catch (err) {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'data-dir', detail: `${path} is not valid JSON (${(err as Error).message}); remove it to join again` });
  }
  if (!c.server || !c.deviceId || !c.token) throw new NexusError('NEXUS_E_CONFIG', { field: 'data-dir', detail: `${path} lacks server, deviceId or token; remove it to join again` });
  return c;
}

/** Writes the credential atomically, readable by its owner only. */
export function saveCredential(dataDir: string, c: AgentCredential): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = credentialPath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);
const MAX_CA_BYTES = 64 * 1024;

/**
 * Step 1: the server's CA, fetched without verifying the server and without any credential (no
 * Authorization header, no cookie, nothing but the path).
 */
export function fetchCaUnverified(server: URL, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const fail = (detail: string) => reject(new NexusError('NEXUS_E_CONNECT', { addr: server.origin, detail }));
    const req = https.request(new URL('/v1/join/ca', server), {
      method: 'GET',
      rejectUnauthorized: false,
      agent: false,
      timeout: timeoutMs,
      headers: { accept: 'application/json' },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_CA_BYTES) req.destroy(new Error(`the CA answer is larger than ${MAX_CA_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`GET /v1/join/ca answered HTTP ${res.statusCode}`);
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ca?: unknown };
          if (typeof body.ca !== 'string') return fail('GET /v1/join/ca answered without a CA');
          resolve(body.ca);
        } catch {
          fail('GET /v1/join/ca answered something that is not JSON');
        }
      });
      res.on('error', (e) => fail(e.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => fail(e.message));
    req.end();
  });
}

/** Step 1's check: the CA's pin must be the token's. */
export function checkPin(server: URL, caPem: string, expected: string): void {
  let actual: string;
  try {
    actual = caPin(caPem);
  } catch {
    actual = '(not a certificate)';
  }
  if (actual !== expected) throw new NexusError('NEXUS_E_JOIN_PIN_MISMATCH', { addr: server.origin, actual, expected });
}

export interface JoinOptions {
  /** Server address, `https://HOST:PORT` (or `http://127.0.0.1:PORT` for a dev server). */
  server: string;
  /** The join token (`NX1<pin>::<id>.<secret>`; the plain `nxt_` form over loopback HTTP). */
  token: string;
  dataDir: string;
  /** Device name. @default the host name */
  name?: string;
  probe: () => Promise<ProbeResult>;
  /** PEM of a CA to trust instead of a pin (an `nxt_` token over https). */
  ca?: string;
}

/** Joins and saves the credential. Throws before sending the token if the server fails the pin. */
export async function joinCluster(o: JoinOptions): Promise<AgentCredential> {
  let server: URL;
  try {
    server = new URL(o.server);
    if (server.protocol !== 'https:' && server.protocol !== 'http:') throw new Error('scheme');
  } catch {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'join', detail: `${JSON.stringify(o.server)} is not an https:// URL` });
  }
  const parsed = parseAnyToken(o.token.trim());
  if (!parsed) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'it is not a join token (expected NX1<pin>::<id>.<secret>)' });
  let ca: string | undefined;
  if (server.protocol === 'http:') {
    if (!LOOPBACK.has(server.hostname)) throw new NexusError('NEXUS_E_CONFIG', { field: 'join', detail: `joining over plain HTTP is allowed on loopback only; use https://${server.host}` });
    if (parsed.pin) throw new NexusError('NEXUS_E_CONFIG', { field: 'join', detail: 'this join token pins a cluster CA, so the server serves TLS: use https://' });
  } else if (parsed.pin) {
    ca = await fetchCaUnverified(server);
    checkPin(server, ca, parsed.pin);
  } else if (o.ca) {
    ca = o.ca;
  } else {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'token', detail: 'joining over https needs a join token with a CA pin (NX1<pin>::…, from `nexus tokens create --role agent`) or --ca' });
  }
  const { capabilities, warnings } = await o.probe();
  const client = new NexusClient({ addr: server.origin, token: bearerOf(parsed), ...(ca ? { ca } : {}) });
  try {
    const joined = await client.join.join({ name: o.name ?? hostname(), capabilities, warnings, agentVersion: VERSION });
    const cred: AgentCredential = {
      server: server.origin,
      deviceId: joined.device.id,
      token: joined.token,
      tokenId: joined.tokenId,
      ...(ca ? { ca, pin: caPin(ca) } : {}),
      joinedAt: new Date().toISOString(),
    };
    saveCredential(o.dataDir, cred);
    return cred;
  } finally {
    client.close();
  }
}
