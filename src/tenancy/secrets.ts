/** Token secrets: generated with the OS's CSPRNG, stored only as a SHA-256 hash. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'nxt_';

export function newAccessorId(): string {
  return `tk${randomBytes(8).toString('hex')}`;
}

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `nxt_<accessor>.<secret>`: the accessor is public (logs, listings), the secret is not. */
export function formatToken(id: string, secret: string): string {
  return `${TOKEN_PREFIX}${id}.${secret}`;
}

export function parseToken(token: string): { id: string; secret: string } | undefined {
  const body = token.startsWith(TOKEN_PREFIX) ? token.slice(TOKEN_PREFIX.length) : undefined;
  if (!body) return undefined;
  const dot = body.indexOf('.');
  if (dot <= 0 || dot === body.length - 1) return undefined;
  return { id: body.slice(0, dot), secret: body.slice(dot + 1) };
}
