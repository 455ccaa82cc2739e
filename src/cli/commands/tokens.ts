import { InvalidArgumentError, type Command } from 'commander';
import { ROLES, type Role } from '../../resources/token.js';
import { clientFor, wantsJson } from '../context.js';
import { printJson, printTable } from '../output.js';

function role(value: string): Role {
  if (!(ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`use one of ${ROLES.join(', ')}`);
  return value as Role;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive whole number of seconds');
  return n;
}

export function tokensCommand(program: Command): void {
  const tokens = program.command('tokens').description('manage API tokens');
  tokens.command('list', { isDefault: true }).description('list tokens (never their secrets)').option('--tenant <name>').option('--json', 'print JSON')
    .action(async (o: { tenant?: string }, cmd: Command) => {
      const { items } = await clientFor(cmd).tokens.list(o.tenant);
      if (wantsJson(cmd)) return printJson({ items });
      printTable(items, [['ID', (t) => t.id], ['ROLE', (t) => t.role], ['TENANT', (t) => t.tenant], ['NAME', (t) => t.name],
        ['EXPIRES', (t) => t.expiresAt], ['REVOKED', (t) => t.revokedAt]]);
    });
  tokens.command('create').description('mint a token; its secret is printed once')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, role)
    .option('--tenant <name>', 'tenant (default: your own)')
    .option('--name <text>', 'what the token is for')
    .option('--ttl <seconds>', 'expire after this many seconds', seconds)
    .option('--json', 'print JSON')
    .action(async (o: { role: Role; tenant?: string; name?: string; ttl?: number }, cmd: Command) => {
      const created = await clientFor(cmd).tokens.create({
        role: o.role, ...(o.tenant ? { tenant: o.tenant } : {}), ...(o.name ? { name: o.name } : {}), ...(o.ttl ? { ttlSeconds: o.ttl } : {}),
      });
      if (wantsJson(cmd)) return printJson({ token: created.token, ...created.item });
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(`token ${created.item.id} (${created.item.role} in ${created.item.tenant}); the secret above is not shown again\n`);
    });
  tokens.command('revoke <id>').description('revoke a token by its id').option('--json', 'print JSON')
    .action(async (id: string, _o, cmd: Command) => {
      const t = await clientFor(cmd).tokens.revoke(id);
      if (wantsJson(cmd)) return printJson(t);
      process.stdout.write(`token ${t.id} revoked\n`);
    });
}
