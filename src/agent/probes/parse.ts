/** Small, forgiving parsers shared by the probes. None of them throw. */

/** `key: value` / `KEY=value` lines → map (first occurrence wins). */
export function keyValues(text: string, sep: ':' | '='): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(sep);
    if (at <= 0) continue;
    const key = line.slice(0, at).trim();
    if (key && !out.has(key)) out.set(key, line.slice(at + 1).trim());
  }
  return out;
}

/** Blocks separated by blank lines (as in /proc/cpuinfo), each as a key: value map. */
export function blocks(text: string): Map<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .map((b) => keyValues(b, ':'))
    .filter((m) => m.size > 0);
}

/** A finite number from text, or undefined ('[N/A]', '', 'abc' → undefined). */
export function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** Leading number of a value with a unit, e.g. '16376 MiB' → 16376. */
export function leadingNum(text: string | undefined): number | undefined {
  const m = text?.trim().match(/^[-+]?\d+(\.\d+)?/);
  return m ? num(m[0]) : undefined;
}

/** Device-tree strings end in NUL; sysfs values end in newline. */
export function clean(text: string | undefined): string | undefined {
  const t = text?.replace(/\0+$/g, '').trim();
  return t ? t : undefined;
}

export const KIB = 1024;
export const MIB = 1024 * 1024;

/** Drops undefined fields (so a merge keeps the defaults underneath). */
export function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
