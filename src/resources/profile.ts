/**
 * Device profiles: named, cluster-wide presets of what a device gives to the pool (reservations,
 * labels, allowed time windows, battery rule, task limit, tier). Assigned to devices by name; the
 * offer a device makes is computed by `applyProfile` (src/cluster/offer.ts). See ADR 009.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Labels, Name, StringEnum, Timestamp } from './common.js';
import { Tier } from './device.js';

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export const Day = StringEnum(DAYS);
export type Day = Static<typeof Day>;

/** Wall-clock time `HH:MM`, 00:00-23:59; `24:00` is accepted as an end (end of the day). */
export const ClockTime = Type.String({ pattern: '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$', description: 'HH:MM, 24-hour wall-clock time (24:00 = end of day)' });

/**
 * An allowed time window. `days` are the days the window STARTS on (all days when absent); a
 * window whose end is before its start crosses midnight and runs into the next day
 * (`fri 22:00-06:00` = Friday 22:00 to Saturday 06:00); `start == end` is the whole of each day.
 */
export const TimeWindow = Type.Object({
  days: Type.Optional(Type.Array(Day, { minItems: 1, maxItems: 7, uniqueItems: true })),
  start: ClockTime,
  end: ClockTime,
}, { additionalProperties: false });
export type TimeWindow = Static<typeof TimeWindow>;

const specFields = {
  labels: Type.Optional(Labels),
  reservedCpuMillis: Type.Optional(Type.Integer({ minimum: 0, description: 'CPU kept back for the device\'s owner, in millicores' })),
  reservedMemoryBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'memory kept back for the device\'s owner, in bytes' })),
  notOnBattery: Type.Optional(Type.Boolean({ description: 'offer nothing while the device runs on battery' })),
  windows: Type.Optional(Type.Array(TimeWindow, { maxItems: 32, description: 'when the device may take work; empty or absent = any time' })),
  timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone the windows are read in (e.g. Europe/Paris); absent = the server\'s local time zone' })),
  maxTasks: Type.Optional(Type.Integer({ minimum: 0, description: 'most tasks at once; absent = limited only by resources' })),
  tier: Type.Optional(Tier),
};

/** The body of PUT /v1/profiles/:name: the whole profile (a replacement; omitted fields take their defaults). */
export const ProfileSpec = Type.Object(specFields, { additionalProperties: false });
export type ProfileSpec = Static<typeof ProfileSpec>;

/** The body of POST /v1/profiles. */
export const ProfileCreate = Type.Object({ name: Name, ...specFields }, { additionalProperties: false });
export type ProfileCreate = Static<typeof ProfileCreate>;

export const Profile = Type.Object({
  name: Name,
  labels: Labels,
  reservedCpuMillis: Type.Integer({ minimum: 0 }),
  reservedMemoryBytes: Type.Integer({ minimum: 0 }),
  notOnBattery: Type.Boolean(),
  windows: Type.Array(TimeWindow),
  timeZone: Type.Optional(Type.String()),
  maxTasks: Type.Optional(Type.Integer({ minimum: 0 })),
  tier: Type.Optional(Tier),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Profile = Static<typeof Profile>;
