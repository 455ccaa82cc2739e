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

export function devicesCommand(program: Command): void {
  program.command('devices').description('list devices').option('--json', 'print JSON').action(async (_o, cmd: Command) => {
    const { items } = await clientFor(cmd).devices.list();
    if (wantsJson(cmd)) return printJson({ items });
    printTable(items, [
      ['NAME', (d) => d.name], ['STATE', (d) => d.state], ['TIER', (d) => d.tier],
      ['OS/ARCH', (d) => `${d.capabilities.os.platform}/${d.capabilities.cpu.arch}`],
      ['CPU', (d) => d.capabilities.cpu.logicalCores], ['MEMORY', (d) => formatBytes(d.capabilities.memory.totalBytes)],
      ['GPU', gpuSummary], ['ID', (d) => d.id],
    ]);
  });
}
