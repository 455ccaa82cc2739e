/**
 * The host side of the network-namespace test helpers (`netns.ts`): running `ip` / `tc`, collecting
 * a child's output, names unique per process, and whether this host can use namespaces and netem
 * at all.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';

export function sh(cmd: string, args: string[], timeoutMs = 10_000): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: !r.error && r.status === 0, stdout: r.stdout ?? '', stderr: (r.error?.message ?? '') + (r.stderr ?? '') };
}

export function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Why namespaces cannot be used here (not Linux, not root, no `ip netns`), or undefined. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (ip netns)';
  const r = sh('ip', ['netns', 'list'], 5000);
  if (!r.ok) return `ip netns is unavailable: ${r.stderr.trim()}`;
  return undefined;
}

let counter = 0;
export const base36pid = process.pid.toString(36);
export function nextId(): string {
  return (counter++).toString(36);
}

let netemProbe: string | undefined | null = null;
/**
 * Why `tc qdisc add … netem` does not work here (no tc, or a kernel without sch_netem), or
 * undefined. Probed once per process in a throwaway namespace.
 */
export function netemSkipReason(): string | undefined {
  if (netemProbe !== null) return netemProbe;
  const ns = netnsSkipReason();
  if (ns) return (netemProbe = ns);
  const probe = `nx-${process.pid}-probe${nextId()}`;
  try {
    must('ip', ['netns', 'add', probe]);
    const r = sh('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], 5000);
    if (r.ok) netemProbe = undefined;
    else if (/ENOENT|not found/i.test(r.stderr)) netemProbe = `tc (iproute2) is not installed: ${r.stderr.trim()}`;
    else netemProbe = `the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM / module sch_netem): \`tc qdisc add … netem\` says "${r.stderr.trim()}"`;
  } catch (err) {
    netemProbe = (err as Error).message;
  } finally {
    sh('ip', ['netns', 'del', probe]);
  }
  return netemProbe;
}

/** Gathers a child's stdout and stderr, interleaved; the function returns what came so far. */
export function collect(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}
