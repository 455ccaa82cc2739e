import { Type, type Static } from '@sinclair/typebox';
import { Labels, Name, Timestamp, StringEnum } from './common.js';

/**
 * What the pool sees of a device: its health (`ready | unreachable | down`, owned by the health
 * controller, docs/adr/005-device-health.md) unless an operator set `draining` or `maintenance`,
 * which shows while the device is healthy. A device that is not `ready` gets no new work.
 */
export const DEVICE_STATES = ['ready', 'unreachable', 'down', 'draining', 'maintenance'] as const;
export const DeviceState = StringEnum(DEVICE_STATES);
export type DeviceState = Static<typeof DeviceState>;

/** Liveness as the health controller judges it from heartbeats. */
export const HEALTH_STATES = ['ready', 'unreachable', 'down'] as const;
export const HealthState = StringEnum(HEALTH_STATES);
export type HealthState = Static<typeof HealthState>;

/** Set by an operator: `draining` (finish work, take no new), `maintenance` (out of the pool). */
export const OPERATOR_STATES = ['draining', 'maintenance'] as const;
export const OperatorState = StringEnum(OPERATOR_STATES);
export type OperatorState = Static<typeof OperatorState>;

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

/** Live load, sent with every heartbeat (never written to the store per heartbeat). */
export const Utilization = Type.Object({
  cpuPct: Type.Number({ minimum: 0, maximum: 100, description: 'busy share of all cores since the previous heartbeat' }),
  memoryUsedBytes: Type.Integer({ minimum: 0 }),
  memoryTotalBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  gpus: Type.Optional(Type.Array(Type.Object({
    index: Type.Integer({ minimum: 0 }),
    utilizationPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    memoryUsedBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  }, { additionalProperties: false }), { maxItems: 64 })),
  battery: Type.Optional(Type.Object({
    onBattery: Type.Boolean(),
    pct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    charging: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type Utilization = Static<typeof Utilization>;

export const Device = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: DeviceState,
  health: Type.Optional(HealthState),
  operatorState: Type.Optional(OperatorState),
  healthChangedAt: Type.Optional(Timestamp),
  tier: Tier,
  labels: Labels,
  capabilities: Capabilities,
  warnings: Type.Array(ProbeWarning),
  agentVersion: Type.Optional(Type.String()),
  address: Type.Optional(Type.String({ description: 'where the agent can be reached, if it serves anything' })),
  registeredAt: Timestamp,
  lastHeartbeatAt: Type.Optional(Timestamp),
  utilization: Type.Optional(Utilization),
  /** Accessor id of the device credential it got when it joined. */
  credentialTokenId: Type.Optional(Type.String()),
  revokedAt: Type.Optional(Timestamp),
});
export type Device = Static<typeof Device>;

/**
 * The profile a device names (set by PATCH /v1/devices/:id {profile}); kept beside the schema's
 * fields because simulations embed profile rules in the same place (src/scheduler/sim.ts).
 */
export function profileOf(d: Device): string | undefined {
  const p = (d as { profile?: unknown }).profile;
  return typeof p === 'string' ? p : undefined;
}

/** POST /v1/join: what a joining agent says about its device (the server picks the id). */
export const DeviceJoin = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 253 }),
  capabilities: Capabilities,
  warnings: Type.Optional(Type.Array(ProbeWarning)),
  labels: Type.Optional(Labels),
  tier: Type.Optional(Tier),
  agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
}, { additionalProperties: false });
export type DeviceJoin = Static<typeof DeviceJoin>;

/** POST /v1/devices: a device credential re-registering its device (a join's fields plus its id). */
export const DeviceRegister = Type.Object({
  id: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$' }),
  ...DeviceJoin.properties,
}, { additionalProperties: false });
export type DeviceRegister = Static<typeof DeviceRegister>;

/** The answer to a join: the device and its own credential (shown once). */
export const DeviceJoined = Type.Object({
  device: Device,
  token: Type.String({ description: 'the device credential: an agent token bound to this device; shown once' }),
  tokenId: Type.String(),
});
export type DeviceJoined = Static<typeof DeviceJoined>;

export const Heartbeat = Type.Object({
  utilization: Type.Optional(Utilization),
  ack: Type.Optional(Type.Boolean({ description: 'on a heartbeat stream: answer this heartbeat (requests are always answered)' })),
}, { additionalProperties: false });
export type Heartbeat = Static<typeof Heartbeat>;

export const HeartbeatReply = Type.Object({
  intervalMs: Type.Integer({ description: 'send the next heartbeat within this many milliseconds' }),
});
export type HeartbeatReply = Static<typeof HeartbeatReply>;

/** PATCH /v1/devices/:id: operator changes. A label set to null is removed. */
export const DevicePatch = Type.Object({
  operatorState: Type.Optional(StringEnum(['none', ...OPERATOR_STATES] as const, 'none | draining | maintenance')),
  labels: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 63 }), Type.Union([Type.String({ maxLength: 253 }), Type.Null()]))),
  tier: Type.Optional(Tier),
  profile: Type.Optional(Type.Union([Name, Type.Null()], { description: 'a profile name, or null to remove it' })),
}, { additionalProperties: false });
export type DevicePatch = Static<typeof DevicePatch>;
