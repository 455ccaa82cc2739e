import { Type, type Static } from '@sinclair/typebox';
import { Name, Timestamp } from './common.js';

export const Quotas = Type.Object({
  cpuMillis: Type.Optional(Type.Integer({ minimum: 0, description: 'CPU in millicores' })),
  memoryBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  gpus: Type.Optional(Type.Integer({ minimum: 0 })),
  storageBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  tasks: Type.Optional(Type.Integer({ minimum: 0, description: 'concurrent tasks' })),
  keys: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });
export type Quotas = Static<typeof Quotas>;

export const TenantCreate = Type.Object({
  name: Name,
  displayName: Type.Optional(Type.String({ maxLength: 200 })),
  quotas: Type.Optional(Quotas),
}, { additionalProperties: false });
export type TenantCreate = Static<typeof TenantCreate>;

export const Tenant = Type.Object({
  name: Name,
  displayName: Type.Optional(Type.String()),
  quotas: Quotas,
  createdAt: Timestamp,
});
export type Tenant = Static<typeof Tenant>;
