/**
 * What a device offers to the scheduler once its profile is applied. Pure: no store, no clock of
 * its own (the caller passes `now`), so the scheduler and the devices API compute the same answer.
 *
 * Time windows are wall-clock times read in the profile's `timeZone`, else in `opts.timeZone`,
 * else in the server process's local time zone (the `TZ` environment variable). See ADR 009.
 */
import type { Device, Tier } from '../resources/device.js';
import { DAYS, type Day, type Profile, type TimeWindow } from '../resources/profile.js';

/**
 * The parts of a device an offer is computed from (a full `Device` fits). The power state comes
 * from the latest heartbeat's `utilization.battery` when there is one, else from the probed
 * `capabilities.power`.
 */
export type OfferDevice = Pick<Device, 'id' | 'tier' | 'labels' | 'capabilities'> & { utilization?: { battery?: { onBattery?: boolean } } };

/** The parts of a profile an offer needs (a full `Profile` fits). */
export type OfferProfile = Pick<Profile, 'name' | 'labels' | 'reservedCpuMillis' | 'reservedMemoryBytes' | 'notOnBattery' | 'windows'>
  & Partial<Pick<Profile, 'timeZone' | 'maxTasks' | 'tier'>>;

export interface OfferedCapacity {
  deviceId: string;
  /** The profile applied, or null for none. */
  profile: string | null;
  /** The profile's tier when it sets one, else the device's. */
  tier: Tier;
  /** logicalCores × 1000 minus the profile's reservation; never below 0. */
  cpuMillis: number;
  /** Total memory minus the profile's reservation; never below 0. */
  memoryBytes: number;
  /** The profile's labels overlaid by the device's own labels (a device's own label wins). */
  labels: Record<string, string>;
  /** May the scheduler place new work on the device now? */
  allowed: boolean;
  /** Why not, when `allowed` is false (empty when allowed). */
  reasons: string[];
  /** Most tasks at once; absent = limited only by resources. */
  maxTasks?: number;
}

export interface OfferOptions {
  /** Time zone for windows when the profile names none. @default the process's local time zone */
  timeZone?: string;
}

/** A moment as a day of the week and a minute of that day (0-1439), in one time zone. */
export interface WallClock {
  day: Day;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAY: Record<string, Day> = { Mon: 'mon', Tue: 'tue', Wed: 'wed', Thu: 'thu', Fri: 'fri', Sat: 'sat', Sun: 'sun' };

/** `now` on the wall clock of `timeZone` (IANA name; undefined = the process's local zone). Throws RangeError for an unknown zone. */
export function wallClock(now: Date | number, timeZone?: string): WallClock {
  const cacheKey = timeZone ?? '';
  let fmt = formatters.get(cacheKey);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', ...(timeZone ? { timeZone } : {}) });
    formatters.set(cacheKey, fmt);
  }
  let day: Day = 'mon';
  let hour = 0;
  let minute = 0;
  for (const p of fmt.formatToParts(typeof now === 'number' ? new Date(now) : now)) {
    if (p.type === 'weekday') day = WEEKDAY[p.value] ?? day;
    else if (p.type === 'hour') hour = Number(p.value) % 24;
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { day, minute: hour * 60 + minute };
}

/** True when `timeZone` is an IANA zone this runtime knows. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** `HH:MM` → minutes since midnight (`24:00` → 1440). */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

function previousDay(day: Day): Day {
  return DAYS[(DAYS.indexOf(day) + DAYS.length - 1) % DAYS.length]!;
}

/**
 * Does `w` contain the wall-clock moment `t`? A window runs from `start` (inclusive) to `end`
 * (exclusive) on each of its `days`; when `end` is before `start` it crosses midnight and ends on
 * the following day, so `days` always names the day a window starts on. `start == end` is the
 * whole of each listed day (as in src/scheduler/feasibility.ts).
 */
export function windowContains(w: TimeWindow, t: WallClock): boolean {
  const start = minutesOf(w.start);
  const end = minutesOf(w.end);
  const on = (d: Day) => w.days === undefined || w.days.includes(d);
  if (start === end) return on(t.day);
  if (start < end) return on(t.day) && t.minute >= start && t.minute < end;
  // Crosses midnight.
  return (on(t.day) && t.minute >= start) || (on(previousDay(t.day)) && t.minute < end);
}

/** No windows = any time; otherwise `now` must fall in at least one. */
export function withinWindows(windows: readonly TimeWindow[], now: Date | number, timeZone?: string): boolean {
  if (windows.length === 0) return true;
  const t = wallClock(now, timeZone);
  return windows.some((w) => windowContains(w, t));
}

function onBattery(device: OfferDevice): boolean {
  const live = device.utilization?.battery?.onBattery;
  if (typeof live === 'boolean') return live;
  const power = (device.capabilities as { power?: { onBattery?: unknown } }).power;
  return power?.onBattery === true;
}

/**
 * What `device` offers the scheduler at `now` under `profile` (none: everything, any time).
 * Unknown power state counts as mains power.
 *
 * @example
 * const offer = applyProfile(device, await profiles.find(device.profile), Date.now());
 * if (offer.allowed) schedule(offer.cpuMillis, offer.memoryBytes, offer.labels);
 */
export function applyProfile(device: OfferDevice, profile: OfferProfile | null | undefined, now: Date | number, opts: OfferOptions = {}): OfferedCapacity {
  const caps = device.capabilities;
  const totalCpu = Math.max(0, Math.floor((caps.cpu.logicalCores ?? 0) * 1000));
  const totalMem = Math.max(0, caps.memory.totalBytes ?? 0);
  if (!profile) {
    return { deviceId: device.id, profile: null, tier: device.tier, cpuMillis: totalCpu, memoryBytes: totalMem, labels: { ...device.labels }, allowed: true, reasons: [] };
  }
  const reasons: string[] = [];
  if (profile.notOnBattery && onBattery(device)) reasons.push('the device is on battery and its profile forbids work on battery');
  const timeZone = profile.timeZone ?? opts.timeZone;
  if (!withinWindows(profile.windows, now, timeZone)) {
    reasons.push(`outside the profile's time windows (${profile.windows.map(describeWindow).join('; ')}${timeZone ? ` ${timeZone}` : ' server time'})`);
  }
  if (profile.maxTasks === 0) reasons.push('the profile allows 0 tasks');
  return {
    deviceId: device.id,
    profile: profile.name,
    tier: profile.tier ?? device.tier,
    cpuMillis: Math.max(0, totalCpu - profile.reservedCpuMillis),
    memoryBytes: Math.max(0, totalMem - profile.reservedMemoryBytes),
    labels: { ...profile.labels, ...device.labels },
    allowed: reasons.length === 0,
    reasons,
    ...(profile.maxTasks !== undefined ? { maxTasks: profile.maxTasks } : {}),
  };
}

/** `mon,tue 22:00-06:00`, or `22:00-06:00` for every day. */
export function describeWindow(w: TimeWindow): string {
  return `${w.days ? `${w.days.join(',')} ` : ''}${w.start}-${w.end}`;
}

/** Parses `describeWindow`'s form back (`[days ]HH:MM-HH:MM`; days as `mon,tue` or a range `mon-fri`). */
export function parseWindow(text: string): TimeWindow {
  const m = /^\s*(?:([a-z,-]+)\s+)?(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/i.exec(text);
  if (!m) throw new Error(`window "${text}" is not "[days ]HH:MM-HH:MM" (e.g. "mon-fri 09:00-17:00", "22:00-06:00")`);
  const pad = (s: string) => s.padStart(5, '0');
  const w: TimeWindow = { start: pad(m[2]!), end: pad(m[3]!) };
  if (m[1]) {
    const days: Day[] = [];
    for (const part of m[1].toLowerCase().split(',').filter(Boolean)) {
      const range = part.split('-');
      const idx = range.map((d) => DAYS.indexOf(d as Day));
      if (idx.some((i) => i < 0) || range.length > 2) throw new Error(`window "${text}": "${part}" is not a day (${DAYS.join(', ')}) or a range of days (mon-fri)`);
      if (idx.length === 1) days.push(DAYS[idx[0]!]!);
      else for (let i = idx[0]!; ; i = (i + 1) % 7) {
        days.push(DAYS[i]!);
        if (i === idx[1]) break;
      }
    }
    w.days = [...new Set(days)];
  }
  return w;
}
