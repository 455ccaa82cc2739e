import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERRORS, NexusError, isNexusError, type ErrorCode } from './catalogue.js';

/** The repository root: the nearest directory above this file that holds package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const DOC_PATH = join(repoRoot(), 'docs', 'errors.md');
const doc = readFileSync(DOC_PATH, 'utf8');
const codes = Object.keys(ERRORS) as ErrorCode[];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('every catalogue code is documented in docs/errors.md with its HTTP status', () => {
  const documented = new Set(doc.match(/\bNEXUS_E_[A-Z_]+\b/g) ?? []);
  const missing = codes.filter((c) => !documented.has(c));
  assert.deepEqual(missing, [], `codes missing from docs/errors.md: ${missing.join(', ')}`);
  for (const code of codes) {
    const row = new RegExp(`^\\|\\s*\`${escapeRegExp(code)}\`\\s*\\|\\s*(\\d{3})\\s*\\|`, 'm').exec(doc);
    assert.ok(row, `docs/errors.md has no table row "| \`${code}\` | <status> | …"`);
    assert.equal(Number(row[1]), ERRORS[code].status, `docs/errors.md gives ${code} the wrong HTTP status`);
  }
});

test('every NEXUS_E_ code named in docs/errors.md exists in the catalogue', () => {
  const named = [...new Set(doc.match(/\bNEXUS_E_[A-Z_]+\b/g) ?? [])];
  assert.ok(named.length > 0);
  const unknown = named.filter((c) => !(c in ERRORS));
  assert.deepEqual(unknown, [], `docs/errors.md names codes that are not in ERRORS: ${unknown.join(', ')}`);
});

test('docs/errors.md documents the JSON error shape and to branch on code', () => {
  assert.match(doc, /\{"error":\{"code":"NEXUS_E_[A-Z_]+","message":"[^"]*","field":"[^"]*"\}\}/);
  assert.match(doc, /branch on `code`, never on `message`/i);
});

test('every code is well formed and has a 4xx/5xx status and a message', () => {
  for (const code of codes) {
    const spec = ERRORS[code];
    assert.match(code, /^NEXUS_E_[A-Z][A-Z_]*[A-Z]$/, code);
    assert.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, `${code}: status ${spec.status} is not 4xx/5xx`);
    assert.ok(spec.message.trim().length > 0, `${code}: empty message`);
  }
});

test('NexusError renders params into the message and takes status from the catalogue', () => {
  const err = new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: 'acme' });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'NexusError');
  assert.equal(err.code, 'NEXUS_E_NOT_FOUND');
  assert.equal(err.status, 404);
  assert.equal(err.message, 'tenant acme was not found.');
  assert.deepEqual(err.params, { kind: 'tenant', id: 'acme' });
  assert.equal(err.field, undefined);
  assert.equal(err.cause, undefined);

  // Numbers and booleans are rendered; a missing param shows as <name>, never as "undefined".
  assert.equal(new NexusError('NEXUS_E_BODY_TOO_LARGE', { limit: 1024 }).message, 'The request body is larger than the limit of 1024 bytes.');
  assert.equal(new NexusError('NEXUS_E_NOT_FOUND', { kind: 'device' }).message, 'device <id> was not found.');
  // A template without placeholders needs no params.
  assert.equal(new NexusError('NEXUS_E_STORE_CLOSED').message, ERRORS.NEXUS_E_STORE_CLOSED.message);
  // Every template renders with no leftover {placeholders} when all its params are given.
  for (const code of codes) {
    const names = [...ERRORS[code].message.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const params = Object.fromEntries(names.map((n) => [n, `P_${n}`]));
    const message = new NexusError(code, params).message;
    assert.doesNotMatch(message, /\{\w+\}/, `${code}: unrendered placeholder in ${JSON.stringify(message)}`);
    for (const n of names) assert.ok(message.includes(`P_${n}`), `${code}: param ${n} not rendered`);
  }
});

test('NexusError carries field and cause', () => {
  const cause = new SyntaxError('Unexpected token } in JSON');
  const err = new NexusError('NEXUS_E_ROLE_ESCALATION', { role: 'member', wanted: 'admin' }, { field: 'role', cause });
  assert.equal(err.field, 'role');
  assert.equal(err.cause, cause);
  assert.equal(err.status, 403);

  // A `field` param doubles as the field at fault; an explicit option wins over it.
  assert.equal(new NexusError('NEXUS_E_VALIDATION', { field: 'quotas.cpuMillis', detail: 'must be >= 0' }).field, 'quotas.cpuMillis');
  assert.equal(new NexusError('NEXUS_E_VALIDATION', { field: 'a', detail: 'x' }, { field: 'b' }).field, 'b');

  assert.ok(isNexusError(err));
  assert.ok(isNexusError(err, 'NEXUS_E_ROLE_ESCALATION'));
  assert.ok(!isNexusError(err, 'NEXUS_E_FORBIDDEN'));
  assert.ok(!isNexusError(new Error('plain')));
});

test('toJSON() gives the documented {"error":{code,message,field}} shape', () => {
  const withField = new NexusError('NEXUS_E_VALIDATION', { field: 'quotas.cpuMillis', detail: 'must be >= 0' }, { cause: new Error('inner') });
  assert.deepEqual(withField.toJSON(), {
    error: { code: 'NEXUS_E_VALIDATION', message: 'Field quotas.cpuMillis is invalid: must be >= 0.', field: 'quotas.cpuMillis' },
  });
  // Exactly what the API sends: the cause and params stay on the server.
  assert.equal(JSON.stringify(withField), '{"error":{"code":"NEXUS_E_VALIDATION","message":"Field quotas.cpuMillis is invalid: must be >= 0.","field":"quotas.cpuMillis"}}');

  // Without a field, the member is absent (not null or undefined).
  const json = new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: 'acme' }).toJSON();
  assert.deepEqual(json, { error: { code: 'NEXUS_E_NOT_FOUND', message: 'tenant acme was not found.' } });
  assert.ok(!('field' in json.error));
});
