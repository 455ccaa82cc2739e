import { Type, type Static } from '@sinclair/typebox';
import { Name, Timestamp, StringEnum } from './common.js';

export const ROLES = ['admin', 'tenant-admin', 'member', 'viewer', 'agent'] as const;
export const Role = StringEnum(ROLES, 'admin | tenant-admin | member | viewer | agent');
export type Role = Static<typeof Role>;

export const TokenCreate = Type.Object({
  role: Role,
  tenant: Type.Optional(Name),
  name: Type.Optional(Type.String({ maxLength: 200, description: 'what the token is for' })),
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'the token expires this long after creation' })),
}, { additionalProperties: false });
export type TokenCreate = Static<typeof TokenCreate>;

/** A token as the API shows it: the secret is never stored and shown only at creation. */
export const Token = Type.Object({
  id: Type.String({ description: 'public accessor id' }),
  role: Role,
  tenant: Name,
  name: Type.Optional(Type.String()),
  createdAt: Timestamp,
  createdBy: Type.Optional(Type.String()),
  expiresAt: Type.Optional(Timestamp),
  revokedAt: Type.Optional(Timestamp),
  deviceId: Type.Optional(Type.String({ description: 'set on a device credential: the one device this agent token acts for' })),
});
export type Token = Static<typeof Token>;

export const TokenCreated = Type.Object({
  token: Type.String({ description: 'the bearer secret; shown once. For role agent on a TLS server: the join token NX1<pin>::<id>.<secret>' }),
  item: Token,
});

/** What the store keeps: the API shape plus the secret's hash. */
export interface TokenRecord extends Token {
  secretHash: string;
}
