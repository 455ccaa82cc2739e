import type { Command } from 'commander';
import type { Device } from '../../resources/device.js';
import { clientFor, wantsJson } from '../context.js';
import { formatBytes, printJson, printTable } from '../output.js';

function gpuSummary(d: Device): string {
  const gpus = d.capabilities.gpus as { name?: string }[];
  if (gpus.length === 0) return '-';
  const names = [...new Set(gpus.map((g) => g.name ?? '?'))];
  return `${gpus.length}× ${names.join(', ')}`;
}

function pct(n: number | undefined): string | undefined {
  return n === undefined ? undefined : `${Math.round(n)}%`;
}

/** "cpu 12% mem 40% gpu 90% bat 55%": what the device is doing now (from its last heartbeat). */
export function utilizationSummary(d: Device): string {
  const u = d.utilization;
  if (!u) return '-';
  const total = u.memoryTotalBytes ?? d.capabilities.memory.totalBytes;
  const parts = [`cpu ${pct(u.cpuPct)}`];
  if (total > 0) parts.push(`mem ${pct((u.memoryUsedBytes / total) * 100)}`);
  const gpuPcts = (u.gpus ?? []).map((g) => g.utilizationPct).filter((v): v is number => v !== undefined);
  if (gpuPcts.length) parts.push(`gpu ${pct(gpuPcts.reduce((a, b) => a + b, 0) / gpuPcts.length)}`);
  if (u.battery?.pct !== undefined) parts.push(`bat ${pct(u.battery.pct)}${u.battery.onBattery ? '' : '+'}`);
  return parts.join(' ');
}

export function devicesCommand(program: Command): void {
  program.command('devices').description('list devices: state, tier, CPU/RAM/GPU and live utilization').option('--json', 'print JSON').action(async (_o, cmd: Command) => {
    const { items } = await clientFor(cmd).devices.list();
    if (wantsJson(cmd)) return printJson({ items });
    printTable(items, [
      ['NAME', (d) => d.name], ['STATE', (d) => d.state], ['TIER', (d) => d.tier],
      ['OS/ARCH', (d) => `${d.capabilities.os.platform}/${d.capabilities.cpu.arch}`],
      ['CPU', (d) => d.capabilities.cpu.logicalCores], ['MEMORY', (d) => formatBytes(d.capabilities.memory.totalBytes)],
      ['GPU', gpuSummary], ['UTILIZATION', utilizationSummary], ['ID', (d) => d.id],
    ]);
  });
}
