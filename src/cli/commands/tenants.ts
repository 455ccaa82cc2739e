import type { Command } from 'commander';
import { clientFor, wantsJson } from '../context.js';
import { printJson, printTable } from '../output.js';

export function tenantsCommand(program: Command): void {
  const tenants = program.command('tenants').description('manage tenants');
  tenants.command('list', { isDefault: true }).description('list tenants').option('--json', 'print JSON').action(async (_o, cmd: Command) => {
    const { items } = await clientFor(cmd).tenants.list();
    if (wantsJson(cmd)) return printJson({ items });
    printTable(items, [['NAME', (t) => t.name], ['DISPLAY NAME', (t) => t.displayName], ['CREATED', (t) => t.createdAt]]);
  });
  tenants.command('create <name>').description('create a tenant').option('--display-name <text>').option('--json', 'print JSON')
    .action(async (name: string, o: { displayName?: string }, cmd: Command) => {
      const t = await clientFor(cmd).tenants.create({ name, ...(o.displayName ? { displayName: o.displayName } : {}) });
      if (wantsJson(cmd)) return printJson(t);
      process.stdout.write(`tenant ${t.name} created\n`);
    });
  tenants.command('delete <name>').description('delete a tenant (it must have no active tokens)').option('--json', 'print JSON')
    .action(async (name: string, _o, cmd: Command) => {
      await clientFor(cmd).tenants.delete(name);
      if (wantsJson(cmd)) return printJson({ deleted: name });
      process.stdout.write(`tenant ${name} deleted\n`);
    });
}
