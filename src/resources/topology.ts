/**
 * Topology: the latest measured round-trip time (and, now and then, bandwidth) between each pair
 * of devices and between each device and the server. See ADR 009.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';

/** The `to` of a sample that measured the server rather than a peer device. */
export const SERVER_NODE = 'server';

/** Largest bandwidth probe the server streams (GET /v1/topology/probe?bytes=N), in bytes. */
export const MAX_PROBE_BYTES = 64 * 1024 * 1024;
/** What the probe streams without `bytes`. */
export const DEFAULT_PROBE_BYTES = 1024 * 1024;

/** A device id (the same pattern as registration), or `server` where a target is allowed. */
export const NodeId = Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$', description: "a device id, or 'server'" });

export const TopologySample = Type.Object({
  to: NodeId,
  rttMs: Type.Number({ minimum: 0, maximum: 600_000, description: 'round-trip time (the median of a few probes), milliseconds' }),
  bandwidthMbps: Type.Optional(Type.Number({ minimum: 0, description: 'measured throughput, megabits per second' })),
  at: Type.Optional(Timestamp),
}, { additionalProperties: false });
export type TopologySample = Static<typeof TopologySample>;

/** POST /v1/topology/samples. */
export const TopologyReport = Type.Object({
  from: NodeId,
  samples: Type.Array(TopologySample, { minItems: 1, maxItems: 256 }),
}, { additionalProperties: false });
export type TopologyReport = Static<typeof TopologyReport>;

export const TopologyReportResult = Type.Object({
  accepted: Type.Integer({ description: 'samples stored' }),
  ignored: Type.Integer({ description: 'samples older than what is already stored for their pair' }),
});
export type TopologyReportResult = Static<typeof TopologyReportResult>;

/** The latest measurement of one directed pair. */
export const Link = Type.Object({
  rttMs: Type.Number(),
  at: Timestamp,
  bandwidthMbps: Type.Optional(Type.Number()),
  /** When `bandwidthMbps` was measured (bandwidth is measured less often than RTT). */
  bandwidthAt: Type.Optional(Timestamp),
});
export type Link = Static<typeof Link>;

export const Topology = Type.Object({
  devices: Type.Array(Type.String()),
  /** matrix[from][to]: `to` is a device id or 'server'. */
  matrix: Type.Record(Type.String(), Type.Record(Type.String(), Link)),
});
export type Topology = Static<typeof Topology>;
