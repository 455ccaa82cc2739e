import { InvalidArgumentError, type Command } from 'commander';
import { describeWindow, isValidTimeZone, parseWindow } from '../../cluster/offer.js';
import { TIERS, type Tier } from '../../resources/device.js';
import { NexusError } from '../../errors/catalogue.js';
import type { Profile, ProfileSpec, TimeWindow } from '../../resources/profile.js';
import { clientFor, wantsJson } from '../context.js';
import { formatBytes, printJson, printTable } from '../output.js';

interface SpecFlags {
  label: string[];
  removeLabel?: string[];
  reservedCpuMillis?: number;
  reservedMemory?: number;
  notOnBattery?: boolean;
  allowBattery?: boolean;
  window: TimeWindow[];
  anyTime?: boolean;
  /** 'server' clears it. */
  timeZone?: string;
  /** 'none' clears it. */
  maxTasks?: number | 'none';
  /** 'none' clears it. */
  tier?: Tier | 'none';
}

const collect = <T>(parse: (v: string) => T) => (value: string, prev: T[] = []): T[] => [...prev, parse(value)];

function label(value: string): string {
  if (!/^[^=]{1,63}=.{0,253}$/s.test(value)) throw new InvalidArgumentError('use KEY=VALUE');
  return value;
}

function window(value: string): TimeWindow {
  try {
    return parseWindow(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('a whole number >= 0');
  return n;
}

/** `1073741824`, `512MiB`, `2GiB`, `1.5G` (powers of 1024 for both spellings). */
export function parseSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$/i.exec(value);
  if (!m) throw new InvalidArgumentError('bytes, or a size like 512MiB, 2GiB');
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const mult = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1;
  const n = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('too large');
  return n;
}

// Clearing values are sentinels ('none', 'server'), never null: commander replaces a null from a parser.
function tier(value: string): Tier | 'none' {
  if (value === 'none') return value;
  if (!(TIERS as readonly string[]).includes(value)) throw new InvalidArgumentError(`use one of ${TIERS.join(', ')}, none`);
  return value as Tier;
}

function maxTasks(value: string): number | 'none' {
  return value === 'none' ? value : wholeNumber(value);
}

function timeZone(value: string): string {
  if (value === 'server') return value;
  if (!isValidTimeZone(value)) throw new InvalidArgumentError('an IANA time zone (UTC, Europe/Paris, …), or "server"');
  return value;
}

/** The flags every write shares. */
function specOptions(cmd: Command, update: boolean): Command {
  cmd
    .option('--label <key=value>', 'a label devices with this profile get (repeatable)', collect(label), [])
    .option('--reserved-cpu-millis <n>', 'CPU kept back for the owner, millicores (1000 = one core)', wholeNumber)
    .option('--reserved-memory <size>', 'memory kept back for the owner: bytes or 512MiB, 2GiB', parseSize)
    .option('--not-on-battery', 'offer nothing while the device runs on battery')
    .option('--window <spec>', 'allowed time window "[days ]HH:MM-HH:MM", e.g. "mon-fri 18:00-08:00" (repeatable; crossing midnight is fine)', collect(window), [])
    .option('--time-zone <zone>', 'IANA time zone the windows are read in (default: the server\'s local time; "server" to clear)', timeZone)
    .option('--max-tasks <n>', 'most tasks at once ("none" = no limit)', maxTasks)
    .option('--tier <tier>', `${TIERS.join(' | ')} (overrides the device's tier; "none" to clear)`, tier)
    .option('--json', 'print JSON');
  if (update) {
    cmd
      .option('--remove-label <key>', 'remove a label (repeatable)', collect((v) => v), [])
      .option('--allow-battery', 'allow work on battery again')
      .option('--any-time', 'remove every time window (allowed at any time)');
  }
  return cmd;
}

/** Applies the flags onto `base` (a profile's current spec, or {} for a new one). */
export function applyFlags(base: ProfileSpec, o: SpecFlags): ProfileSpec {
  const spec: ProfileSpec = { ...base, labels: { ...(base.labels ?? {}) }, windows: [...(base.windows ?? [])] };
  for (const k of o.removeLabel ?? []) delete spec.labels![k];
  for (const kv of o.label) {
    const i = kv.indexOf('=');
    spec.labels![kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (o.reservedCpuMillis !== undefined) spec.reservedCpuMillis = o.reservedCpuMillis;
  if (o.reservedMemory !== undefined) spec.reservedMemoryBytes = o.reservedMemory;
  if (o.notOnBattery && o.allowBattery) throw new NexusError('NEXUS_E_VALIDATION', { field: '--allow-battery', detail: 'it contradicts --not-on-battery' });
  if (o.notOnBattery) spec.notOnBattery = true;
  if (o.allowBattery) spec.notOnBattery = false;
  if (o.anyTime && o.window.length) throw new NexusError('NEXUS_E_VALIDATION', { field: '--any-time', detail: 'it contradicts --window' });
  if (o.anyTime) spec.windows = [];
  if (o.window.length) spec.windows = o.window;
  if (o.timeZone === 'server') delete spec.timeZone;
  else if (o.timeZone !== undefined) spec.timeZone = o.timeZone;
  if (o.maxTasks === 'none') delete spec.maxTasks;
  else if (o.maxTasks !== undefined) spec.maxTasks = o.maxTasks;
  if (o.tier === 'none') delete spec.tier;
  else if (o.tier !== undefined) spec.tier = o.tier;
  return spec;
}

function specOf(p: Profile): ProfileSpec {
  const { name: _n, createdAt: _c, updatedAt: _u, ...spec } = p;
  return spec;
}

const windowsText = (p: Profile) => (p.windows.length ? p.windows.map(describeWindow).join('; ') : 'any time');
const labelsText = (p: Profile) => Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(',') || undefined;

function printProfile(p: Profile): void {
  const rows: [string, string][] = [
    ['name', p.name],
    ['tier', p.tier ?? '(the device\'s own)'],
    ['reserved cpu', `${p.reservedCpuMillis}m`],
    ['reserved memory', formatBytes(p.reservedMemoryBytes)],
    ['on battery', p.notOnBattery ? 'no work' : 'allowed'],
    ['windows', windowsText(p)],
    ['time zone', p.timeZone ?? 'server local time'],
    ['max tasks', p.maxTasks === undefined ? 'no limit' : String(p.maxTasks)],
    ['labels', labelsText(p) ?? '-'],
    ['created', p.createdAt],
    ['updated', p.updatedAt],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(16)}${v}\n`);
}

export function profilesCommand(program: Command): void {
  const profiles = program.command('profiles').description('manage device profiles: reservations, time windows, battery rule, task limit, tier');
  profiles.command('list', { isDefault: true }).description('list profiles').option('--json', 'print JSON').action(async (_o, cmd: Command) => {
    const { items } = await clientFor(cmd).profiles.list();
    if (wantsJson(cmd)) return printJson({ items });
    printTable(items, [
      ['NAME', (p) => p.name], ['TIER', (p) => p.tier], ['CPU RESERVED', (p) => `${p.reservedCpuMillis}m`],
      ['MEM RESERVED', (p) => formatBytes(p.reservedMemoryBytes)], ['BATTERY', (p) => (p.notOnBattery ? 'no' : 'yes')],
      ['WINDOWS', windowsText], ['MAX TASKS', (p) => p.maxTasks], ['LABELS', labelsText],
    ]);
  });

  profiles.command('show <name>').description('show one profile').option('--json', 'print JSON').action(async (name: string, _o, cmd: Command) => {
    const p = await clientFor(cmd).profiles.get(name);
    if (wantsJson(cmd)) return printJson(p);
    printProfile(p);
  });

  specOptions(profiles.command('create <name>').description('create a profile (admin)'), false)
    .action(async (name: string, o: SpecFlags, cmd: Command) => {
      const p = await clientFor(cmd).profiles.create({ name, ...applyFlags({}, o) });
      if (wantsJson(cmd)) return printJson(p);
      process.stdout.write(`profile ${p.name} created\n`);
    });

  specOptions(profiles.command('update <name>').description('change some fields of a profile; the others keep their values (admin)'), true)
    .action(async (name: string, o: SpecFlags, cmd: Command) => {
      const client = clientFor(cmd);
      const p = await client.profiles.replace(name, applyFlags(specOf(await client.profiles.get(name)), o));
      if (wantsJson(cmd)) return printJson(p);
      process.stdout.write(`profile ${p.name} updated\n`);
    });

  profiles.command('delete <name>').description('delete a profile no device uses (admin)').option('--json', 'print JSON')
    .action(async (name: string, _o, cmd: Command) => {
      await clientFor(cmd).profiles.delete(name);
      if (wantsJson(cmd)) return printJson({ deleted: name });
      process.stdout.write(`profile ${name} deleted\n`);
    });
}
