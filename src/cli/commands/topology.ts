import { InvalidArgumentError, type Command } from 'commander';
import type { Link, Topology } from '../../resources/topology.js';
import { SERVER_NODE } from '../../resources/topology.js';
import { clientFor, wantsJson } from '../context.js';
import { printJson } from '../output.js';

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive whole number of seconds');
  return n;
}

/** `0.42ms`, `12.3ms 940Mb/s`. */
export function formatLink(l: Link | undefined): string {
  if (!l) return '-';
  const rtt = l.rttMs < 10 ? l.rttMs.toFixed(2) : l.rttMs < 100 ? l.rttMs.toFixed(1) : l.rttMs.toFixed(0);
  const bw = l.bandwidthMbps === undefined ? '' : ` ${l.bandwidthMbps >= 100 ? l.bandwidthMbps.toFixed(0) : l.bandwidthMbps.toFixed(1)}Mb/s`;
  return `${rtt}ms${bw}`;
}

/** The matrix as text lines: one row per device (from), one column per target (server first). */
export function renderMatrix(t: Topology, names: ReadonlyMap<string, string> = new Map()): string[] {
  const label = (id: string) => names.get(id) ?? id;
  const cols = [SERVER_NODE, ...t.devices];
  const header = ['FROM \\ TO', ...cols.map((c) => (c === SERVER_NODE ? 'SERVER' : label(c)))];
  const rows = t.devices.map((from) => [label(from), ...cols.map((to) => (to === from ? '·' : formatLink(t.matrix[from]?.[to])))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [line(header), ...rows.map(line)];
  if (t.devices.length === 0) out.push('(no devices)');
  return out;
}

export function topologyCommand(program: Command): void {
  program.command('topology').description('show the measured network: round-trip time (and bandwidth) from each device to the server and its peers')
    .option('--max-age <seconds>', 'leave out measurements older than this', seconds)
    .option('--json', 'print JSON')
    .action(async (o: { maxAge?: number }, cmd: Command) => {
      const client = clientFor(cmd);
      const [topo, devices] = await Promise.all([
        client.topology.get(o.maxAge !== undefined ? { maxAgeSeconds: o.maxAge } : {}),
        client.devices.list().then((r) => r.items, () => []),
      ]);
      if (wantsJson(cmd)) return printJson(topo);
      // Devices by name where the name is unique, else by id.
      const counts = new Map<string, number>();
      for (const d of devices) counts.set(d.name, (counts.get(d.name) ?? 0) + 1);
      const names = new Map(devices.filter((d) => counts.get(d.name) === 1).map((d) => [d.id, d.name] as const));
      process.stdout.write(renderMatrix(topo, names).join('\n') + '\n');
    });
}
