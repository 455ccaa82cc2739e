/**
 * Join tokens: `NX1<pin>::<id>.<secret>`, the k3s idea. `pin` is the SHA-256 (hex) of the cluster
 * CA certificate's DER, so an agent can check the server it reached before it sends the secret.
 * `<id>.<secret>` is an ordinary `agent` token (`nxt_<id>.<secret>`): it is stored, listed, expires
 * and is revoked like any other. A server without TLS (`nexus dev`) has no CA to pin and hands out
 * the plain `nxt_` form, which agents accept only over loopback.
 */
import { formatToken, parseToken } from './secrets.js';

export const JOIN_TOKEN_PREFIX = 'NX1';

const JOIN_RE = /^NX1([0-9a-f]{64})::([^.:\s]+)\.(\S+)$/;

/** `NX1<pin>::<id>.<secret>`. */
export function formatJoinToken(pin: string, id: string, secret: string): string {
  return `${JOIN_TOKEN_PREFIX}${pin}::${id}.${secret}`;
}

export interface ParsedToken {
  readonly id: string;
  readonly secret: string;
  /** The CA pin, for the `NX1` form. */
  readonly pin?: string;
}

/** Parses either form (`NX1<pin>::<id>.<secret>` or `nxt_<id>.<secret>`); undefined if neither. */
export function parseAnyToken(token: string): ParsedToken | undefined {
  const m = JOIN_RE.exec(token);
  if (m) return { pin: m[1]!, id: m[2]!, secret: m[3]! };
  return parseToken(token);
}

/** The bearer form of a join token: `nxt_<id>.<secret>` (the pin is for the agent, not the server). */
export function bearerOf(token: ParsedToken): string {
  return formatToken(token.id, token.secret);
}
