import { InvalidArgumentError, type Command } from 'commander';
import { ApiError } from '../../client/transport.js';
import type { NexusClient } from '../../client/client.js';
import { profileOf, type Device, DevicePatch } from '../../resources/device.js';
import { clientFor, wantsJson } from '../context.js';
import { formatBytes, printJson } from '../output.js';
import { utilizationSummary } from './devices.js';

/** A device by id, or by name when exactly one device has it. */
async function resolveDevice(client: NexusClient, idOrName: string): Promise<Device> {
  try {
    return await client.devices.get(idOrName);
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'NEXUS_E_NOT_FOUND') throw err;
    const named = (await client.devices.list()).items.filter((d) => d.name === idOrName);
    if (named.length === 1) return named[0]!;
    throw err;
  }
}

function show(d: Device): void {
  const rows: [string, string | undefined][] = [
    ['id', d.id], ['name', d.name], ['state', d.state], ['health', d.health],
    ['operator state', d.operatorState ?? 'none'], ['health since', d.healthChangedAt], ['tier', d.tier],
    ['labels', Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '-'],
    ['os', `${d.capabilities.os.platform}/${d.capabilities.cpu.arch}`],
    ['cpu', `${d.capabilities.cpu.logicalCores} cores${d.capabilities.cpu.model ? ` (${d.capabilities.cpu.model})` : ''}`],
    ['memory', formatBytes(d.capabilities.memory.totalBytes)],
    ['gpus', (d.capabilities.gpus as { name?: string }[]).map((g) => g.name ?? '?').join(', ') || '-'],
    ['utilization', utilizationSummary(d)], ['last heartbeat', d.lastHeartbeatAt],
    ['agent', d.agentVersion], ['registered', d.registeredAt], ['credential', d.credentialTokenId], ['revoked', d.revokedAt],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) if (v !== undefined) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
}

/** `key=value` sets, `key-` removes (as kubectl label). */
function parseLabels(args: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const a of args) {
    const m = /^([^=\s]+)=(.*)$/.exec(a);
    if (m) out[m[1]!] = m[2]!;
    else if (/^[^=\s]+-$/.test(a)) out[a.slice(0, -1)] = null;
    else throw new InvalidArgumentError(`label ${JSON.stringify(a)}: use key=value to set or key- to remove`);
  }
  return out;
}

export function deviceCommand(program: Command): void {
  const device = program.command('device').description('one device: show it, drain it, put it in maintenance, label it, revoke it');

  device.command('show <id>').description('a device in detail (id or unique name)').option('--json', 'print JSON')
    .action(async (id: string, _o, cmd: Command) => {
      const d = await resolveDevice(clientFor(cmd), id);
      if (wantsJson(cmd)) return printJson(d);
      show(d);
    });

  const patchCommand = (name: string, description: string, patchFor: (off: boolean) => DevicePatch, done: (d: Device, off: boolean) => string) =>
    device.command(`${name} <id>`).description(description).option('--off', 'undo: back to normal').option('--json', 'print JSON')
      .action(async (id: string, o: { off?: boolean }, cmd: Command) => {
        const client = clientFor(cmd);
        const d = await client.devices.update((await resolveDevice(client, id)).id, patchFor(Boolean(o.off)));
        if (wantsJson(cmd)) return printJson(d);
        process.stdout.write(`${done(d, Boolean(o.off))}\n`);
      });
  patchCommand('drain', 'take no new work on this device (running work finishes)',
    (off) => ({ operatorState: off ? 'none' : 'draining' }), (d, off) => `device ${d.name} ${off ? 'no longer draining' : 'draining'} (state ${d.state})`);
  patchCommand('maintenance', 'take this device out of the pool for maintenance',
    (off) => ({ operatorState: off ? 'none' : 'maintenance' }), (d, off) => `device ${d.name} ${off ? 'out of maintenance' : 'in maintenance'} (state ${d.state})`);

  device.command('profile <id> [profile]').description('apply a device profile (see nexus profiles); --off removes it').option('--off', 'remove the profile').option('--json', 'print JSON')
    .action(async (id: string, profile: string | undefined, o: { off?: boolean }, cmd: Command) => {
      if (!profile && !o.off) throw new InvalidArgumentError('name a profile, or give --off to remove it');
      const client = clientFor(cmd);
      const d = await client.devices.update((await resolveDevice(client, id)).id, { profile: o.off ? null : profile! });
      if (wantsJson(cmd)) return printJson(d);
      process.stdout.write(`device ${d.name} profile: ${profileOf(d) ?? '(none)'}\n`);
    });

  device.command('label <id> <labels...>').description('set (key=value) or remove (key-) labels').option('--json', 'print JSON')
    .action(async (id: string, labels: string[], _o, cmd: Command) => {
      const patch = { labels: parseLabels(labels) };
      const client = clientFor(cmd);
      const d = await client.devices.update((await resolveDevice(client, id)).id, patch);
      if (wantsJson(cmd)) return printJson(d);
      process.stdout.write(`device ${d.name} labels: ${Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)'}\n`);
    });

  device.command('revoke <id>').description("revoke the device's credential: its agent is refused from now on").option('--json', 'print JSON')
    .action(async (id: string, _o, cmd: Command) => {
      const client = clientFor(cmd);
      const d = await client.devices.revoke((await resolveDevice(client, id)).id);
      if (wantsJson(cmd)) return printJson(d);
      process.stdout.write(`device ${d.name} (${d.id}) revoked\n`);
    });
}
