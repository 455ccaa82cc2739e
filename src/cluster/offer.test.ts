import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Profile } from '../resources/profile.js';
import { applyProfile, describeWindow, parseWindow, wallClock, windowContains, withinWindows, type OfferDevice } from './offer.js';

const GiB = 1024 ** 3;

function device(over: Partial<OfferDevice> & { power?: { onBattery: boolean } } = {}): OfferDevice {
  const { power, ...rest } = over;
  return {
    id: 'd1',
    tier: 'local',
    labels: { zone: 'desk' },
    capabilities: { os: { platform: 'linux' }, cpu: { arch: 'x64', logicalCores: 8 }, memory: { totalBytes: 16 * GiB }, gpus: [], ...(power ? { power } : {}) },
    ...rest,
  };
}

function profile(over: Partial<Profile> = {}): Profile {
  return {
    name: 'nights', labels: {}, reservedCpuMillis: 0, reservedMemoryBytes: 0, notOnBattery: false, windows: [],
    createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z', ...over,
  };
}

/** A UTC instant: 2024-01-01 is a Monday. */
const at = (day: number, hhmm: string) => Date.parse(`2024-01-${String(day).padStart(2, '0')}T${hhmm}:00Z`);

describe('wallClock', () => {
  it('reads the day and minute in the given time zone', () => {
    assert.deepEqual(wallClock(at(1, '10:30'), 'UTC'), { day: 'mon', minute: 630 });
    assert.deepEqual(wallClock(at(1, '00:00'), 'UTC'), { day: 'mon', minute: 0 });
    assert.deepEqual(wallClock(at(7, '23:59'), 'UTC'), { day: 'sun', minute: 1439 });
    // Monday 02:00 UTC is still Sunday 21:00 in New York (EST, UTC-5).
    assert.deepEqual(wallClock(at(1, '02:00'), 'America/New_York'), { day: 'sun', minute: 21 * 60 });
    // Tokyo (UTC+9): Monday 20:00 UTC is Tuesday 05:00.
    assert.deepEqual(wallClock(at(1, '20:00'), 'Asia/Tokyo'), { day: 'tue', minute: 5 * 60 });
  });
});

describe('windowContains', () => {
  const t = (day: 'mon' | 'tue' | 'wed' | 'fri' | 'sat' | 'sun', hhmm: string) => ({ day, minute: Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3)) });

  it('a same-day window is start-inclusive, end-exclusive', () => {
    const w = { start: '09:00', end: '17:00' };
    assert.ok(!windowContains(w, t('mon', '08:59')));
    assert.ok(windowContains(w, t('mon', '09:00')));
    assert.ok(windowContains(w, t('sun', '16:59')));
    assert.ok(!windowContains(w, t('mon', '17:00')));
  });

  it('a window crossing midnight runs into the next day', () => {
    const w = { start: '22:00', end: '06:00' };
    assert.ok(windowContains(w, t('mon', '22:00')));
    assert.ok(windowContains(w, t('mon', '23:59')));
    assert.ok(windowContains(w, t('tue', '00:00')));
    assert.ok(windowContains(w, t('tue', '05:59')));
    assert.ok(!windowContains(w, t('tue', '06:00')));
    assert.ok(!windowContains(w, t('tue', '12:00')));
    assert.ok(!windowContains(w, t('tue', '21:59')));
  });

  it('days name the day a window starts on, also across midnight', () => {
    const w = { days: ['fri' as const], start: '22:00', end: '06:00' };
    assert.ok(windowContains(w, t('fri', '23:00')));
    assert.ok(windowContains(w, t('sat', '05:00')), 'Friday night continues into Saturday morning');
    assert.ok(!windowContains(w, t('sat', '23:00')), 'Saturday night is not a Friday window');
    assert.ok(!windowContains(w, t('fri', '05:00')), 'Friday morning belongs to Thursday night');
    // Sunday's overnight window ends Monday morning (the week wraps).
    const sun = { days: ['sun' as const], start: '20:00', end: '02:00' };
    assert.ok(windowContains(sun, t('mon', '01:00')));
    assert.ok(!windowContains(sun, t('sun', '01:00')));
  });

  it('a day list limits a same-day window', () => {
    const w = { days: ['sat' as const, 'sun' as const], start: '00:00', end: '24:00' };
    assert.ok(windowContains(w, t('sat', '00:00')));
    assert.ok(windowContains(w, t('sun', '23:59')));
    assert.ok(!windowContains(w, t('mon', '00:00')));
    assert.ok(!windowContains(w, t('fri', '23:59')));
  });

  it('start == end is the whole of each listed day', () => {
    const w = { days: ['wed' as const], start: '12:00', end: '12:00' };
    assert.ok(windowContains(w, t('wed', '00:00')));
    assert.ok(windowContains(w, t('wed', '23:59')));
    assert.ok(!windowContains(w, t('tue', '23:59')));
    assert.ok(!windowContains(w, t('fri', '12:00')));
    assert.ok(windowContains({ start: '00:00', end: '00:00' }, t('sun', '13:00')));
  });
});

describe('withinWindows', () => {
  it('no windows = any time; otherwise any one window suffices', () => {
    assert.ok(withinWindows([], at(3, '12:00'), 'UTC'));
    const ws = [{ days: ['mon' as const], start: '09:00', end: '10:00' }, { start: '22:00', end: '02:00' }];
    assert.ok(withinWindows(ws, at(1, '09:30'), 'UTC'));
    assert.ok(withinWindows(ws, at(3, '01:00'), 'UTC'));
    assert.ok(!withinWindows(ws, at(2, '09:30'), 'UTC'));
  });
});

describe('applyProfile', () => {
  const now = at(3, '12:00'); // Wednesday noon UTC

  it('without a profile a device offers everything, any time', () => {
    assert.deepEqual(applyProfile(device(), null, now), {
      deviceId: 'd1', profile: null, tier: 'local', cpuMillis: 8000, memoryBytes: 16 * GiB, labels: { zone: 'desk' }, allowed: true, reasons: [],
    });
  });

  it('subtracts reservations (never below 0), merges labels (the device wins) and applies maxTasks and tier', () => {
    const o = applyProfile(device(), profile({
      reservedCpuMillis: 1500, reservedMemoryBytes: 4 * GiB, labels: { zone: 'lab', pool: 'nights' }, maxTasks: 2, tier: 'edge',
    }), now);
    assert.equal(o.cpuMillis, 6500);
    assert.equal(o.memoryBytes, 12 * GiB);
    assert.deepEqual(o.labels, { zone: 'desk', pool: 'nights' });
    assert.equal(o.maxTasks, 2);
    assert.equal(o.tier, 'edge');
    assert.equal(o.profile, 'nights');
    assert.ok(o.allowed);
    const over = applyProfile(device(), profile({ reservedCpuMillis: 99_000, reservedMemoryBytes: 99 * GiB }), now);
    assert.deepEqual([over.cpuMillis, over.memoryBytes], [0, 0]);
    assert.equal(over.tier, 'local', 'no profile tier: the device\'s');
    assert.ok(!('maxTasks' in over));
  });

  it('notOnBattery: refuses on battery, allows on mains and when the power state is unknown', () => {
    const p = profile({ notOnBattery: true });
    const onBatt = applyProfile(device({ power: { onBattery: true } }), p, now);
    assert.equal(onBatt.allowed, false);
    assert.match(onBatt.reasons[0]!, /battery/);
    assert.ok(applyProfile(device({ power: { onBattery: false } }), p, now).allowed);
    assert.ok(applyProfile(device(), p, now).allowed);
    // Without notOnBattery the battery does not matter.
    assert.ok(applyProfile(device({ power: { onBattery: true } }), profile(), now).allowed);
    // The latest heartbeat's battery state wins over the probed one.
    assert.equal(applyProfile({ ...device({ power: { onBattery: false } }), utilization: { battery: { onBattery: true } } }, p, now).allowed, false);
    assert.ok(applyProfile({ ...device({ power: { onBattery: true } }), utilization: { battery: { onBattery: false } } }, p, now).allowed);
  });

  it('windows: allowed inside, refused outside with a reason; read in the profile\'s time zone', () => {
    const p = profile({ windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '18:00', end: '08:00' }], timeZone: 'UTC' });
    assert.ok(applyProfile(device(), p, at(3, '19:00')).allowed);
    assert.ok(applyProfile(device(), p, at(4, '07:59')).allowed, 'Wednesday night into Thursday');
    assert.ok(applyProfile(device(), p, at(6, '07:00')).allowed, 'Friday night into Saturday');
    assert.equal(applyProfile(device(), p, at(7, '07:00')).allowed, false, 'Saturday night is not listed');
    const out = applyProfile(device(), p, at(3, '12:00'));
    assert.equal(out.allowed, false);
    assert.match(out.reasons[0]!, /outside the profile's time windows \(mon,tue,wed,thu,fri 18:00-08:00 UTC\)/);
    // The same instant in Tokyo (UTC+9) is 21:00: inside.
    assert.ok(applyProfile(device(), { ...p, timeZone: 'Asia/Tokyo' }, at(3, '12:00')).allowed);
    // Without a profile time zone, opts.timeZone applies.
    const noTz = profile({ windows: [{ start: '11:00', end: '13:00' }] });
    assert.ok(applyProfile(device(), noTz, at(3, '12:00'), { timeZone: 'UTC' }).allowed);
    assert.equal(applyProfile(device(), noTz, at(3, '12:00'), { timeZone: 'Asia/Tokyo' }).allowed, false);
  });

  it('collects every reason, and maxTasks 0 refuses', () => {
    const o = applyProfile(device({ power: { onBattery: true } }), profile({ notOnBattery: true, windows: [{ start: '00:00', end: '01:00' }], timeZone: 'UTC', maxTasks: 0 }), at(3, '12:00'));
    assert.equal(o.allowed, false);
    assert.equal(o.reasons.length, 3);
  });
});

describe('parseWindow / describeWindow', () => {
  it('parses days, day ranges (wrapping the week) and pads hours', () => {
    assert.deepEqual(parseWindow('22:00-06:00'), { start: '22:00', end: '06:00' });
    assert.deepEqual(parseWindow('mon-fri 9:00-17:30'), { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:30' });
    assert.deepEqual(parseWindow('fri-mon 20:00-08:00').days, ['fri', 'sat', 'sun', 'mon']);
    assert.deepEqual(parseWindow('Sat,sun 00:00-24:00'), { days: ['sat', 'sun'], start: '00:00', end: '24:00' });
    assert.equal(describeWindow(parseWindow('mon,wed 01:00-02:00')), 'mon,wed 01:00-02:00');
    assert.throws(() => parseWindow('someday 01:00-02:00'), /not a day/);
    assert.throws(() => parseWindow('01:00'), /HH:MM-HH:MM/);
  });
});
