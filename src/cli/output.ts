/** How the CLI prints: aligned tables for people, `--json` for programs. */
import { ApiError } from '../client/transport.js';
import { NexusError } from '../errors/catalogue.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export type Column<T> = [header: string, get: (row: T) => string | number | undefined];

export function printTable<T>(rows: T[], columns: Column<T>[]): void {
  const cells = rows.map((r) => columns.map(([, get]) => String(get(r) ?? '-')));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  process.stdout.write(line(columns.map(([h]) => h)) + '\n');
  for (const c of cells) process.stdout.write(line(c) + '\n');
  if (rows.length === 0) process.stdout.write('(none)\n');
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Prints an error the way every command does, and returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  if (err instanceof ApiError || err instanceof NexusError) {
    const body = { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
    if (json) process.stderr.write(JSON.stringify(body) + '\n');
    else process.stderr.write(`error ${err.code}: ${err.message}${err.field ? ` (field: ${err.field})` : ''}\n`);
    return 1;
  }
  process.stderr.write(`error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  return 1;
}
