import { Type, type Static } from '@sinclair/typebox';
import { Labels, Timestamp, StringEnum } from './common.js';

export const DEVICE_STATES = ['ready', 'unreachable', 'down', 'draining', 'maintenance'] as const;
export const DeviceState = StringEnum(DEVICE_STATES);
export type DeviceState = Static<typeof DeviceState>;

export const TIERS = ['edge', 'local', 'cloud'] as const;
export const Tier = StringEnum(TIERS);
export type Tier = Static<typeof Tier>;

/**
 * What a device can do, as its agent's probes found it. The shape is the probes' Capabilities
 * (src/agent/probes/capabilities.ts); the API guarantees at least the fields named here.
 */
export const Capabilities = Type.Object({
  os: Type.Object({ platform: Type.String(), kernel: Type.Optional(Type.String()), hostname: Type.Optional(Type.String()) }, { additionalProperties: true }),
  cpu: Type.Object({ arch: Type.String(), logicalCores: Type.Integer({ minimum: 1 }), model: Type.Optional(Type.String()) }, { additionalProperties: true }),
  memory: Type.Object({ totalBytes: Type.Integer({ minimum: 0 }), availableBytes: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: true }),
  gpus: Type.Array(Type.Object({}, { additionalProperties: true })),
}, { additionalProperties: true });
export type DeviceCapabilities = Static<typeof Capabilities>;

export const ProbeWarning = Type.Object({ probe: Type.String(), message: Type.String() });

export const Device = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: DeviceState,
  tier: Tier,
  labels: Labels,
  capabilities: Capabilities,
  warnings: Type.Array(ProbeWarning),
  agentVersion: Type.Optional(Type.String()),
  address: Type.Optional(Type.String({ description: 'where the agent can be reached, if it serves anything' })),
  registeredAt: Timestamp,
  lastHeartbeatAt: Type.Optional(Timestamp),
});
export type Device = Static<typeof Device>;

export const DeviceRegister = Type.Object({
  id: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$' }),
  name: Type.String({ minLength: 1, maxLength: 253 }),
  capabilities: Capabilities,
  warnings: Type.Optional(Type.Array(ProbeWarning)),
  labels: Type.Optional(Labels),
  tier: Type.Optional(Tier),
  agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
}, { additionalProperties: false });
export type DeviceRegister = Static<typeof DeviceRegister>;
