import { it } from 'node:test';
import assert from 'node:assert/strict';
import { bearerOf, formatJoinToken, parseAnyToken } from './join-token.js';

const pin = 'ab'.repeat(32);

it('join tokens round-trip and carry the pin; the plain form has none', () => {
  const t = formatJoinToken(pin, 'tk0123456789abcdef', 'sec_ret-XYZ');
  assert.equal(t, `NX1${pin}::tk0123456789abcdef.sec_ret-XYZ`);
  assert.deepEqual(parseAnyToken(t), { pin, id: 'tk0123456789abcdef', secret: 'sec_ret-XYZ' });
  assert.equal(bearerOf(parseAnyToken(t)!), 'nxt_tk0123456789abcdef.sec_ret-XYZ');
  assert.deepEqual(parseAnyToken('nxt_tk1.s'), { id: 'tk1', secret: 's' });
});

it('malformed join tokens are refused', () => {
  for (const bad of ['', 'NX1', `NX1${pin}::`, `NX1${pin.slice(2)}::tk1.s`, `NX1${pin.toUpperCase()}::tk1.s`, `NX1${pin}:tk1.s`, `NX1${pin}::tk1`, 'nxt_', 'tk1.s']) {
    assert.equal(parseAnyToken(bad), undefined, bad);
  }
});
