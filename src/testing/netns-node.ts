/**
 * One node of a network-namespace lab (`netns.ts`): its addresses, `ip` and `tc netem` in its
 * namespace, and processes run inside it (tracked, so the lab can stop them at cleanup).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { collect, must } from './netns-host.js';
import type { NetLink } from './netns.js';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Merged over process.env. */
  env?: NodeJS.ProcessEnv;
  /** SIGKILL and reject after this long. @default 30000 */
  timeoutMs?: number;
}

export interface ReadyProcess {
  child: ChildProcess;
  match: RegExpMatchArray;
  /** stdout and stderr so far, interleaved. */
  output(): string;
}

export interface NetNode {
  /** The label from `names`. */
  readonly name: string;
  /** The namespace (`ip netns` name). */
  readonly ns: string;
  /** The node's interface on the shared link. */
  readonly dev: string;
  /** The node's IPv4 address on the link (without prefix length). */
  readonly addr: string;
  /** Runs `ip -n <ns> ARGS` and throws on failure. */
  ip(...args: string[]): string;
  /** `tc qdisc replace dev <dev> root netem SPEC` (veth and bridge links only). */
  netem(spec: string): void;
  /** Spawns CMD inside the namespace; the process is tracked and killed at cleanup. `ip netns exec`
   * execs in place, so signals to the child reach CMD itself. */
  spawn(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  /** Spawns CMD inside and waits until its stdout/stderr match `ready`. */
  spawnReady(cmd: string, args: string[], ready: RegExp, opts?: RunOptions): Promise<ReadyProcess>;
  /** Runs CMD inside to completion (bounded by `timeoutMs`). */
  run(cmd: string, args: string[], opts?: RunOptions): Promise<CommandResult>;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The node `name` in namespace `ns`; what it spawns is added to `children` (and leaves it on exit). */
export function makeNode(name: string, ns: string, dev: string, addr: string, link: NetLink, children: Set<ChildProcess>): NetNode {
  const spawnIn = (cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  return {
    name,
    ns,
    dev,
    addr,
    ip: (...args) => must('ip', ['-n', ns, ...args]),
    netem(spec) {
      if (link === 'wire') throw new Error('netem() needs a veth or bridge link; the wire link takes its impairment at creation');
      must('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'netem', ...spec.trim().split(/\s+/)]);
    },
    spawn: (cmd, args, opts) => spawnIn(cmd, args, opts?.env),
    spawnReady(cmd, args, ready, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      return new Promise((resolve, reject) => {
        const child = spawnIn(cmd, args, opts.env);
        child.stdin!.end();
        const output = collect(child);
        let done = false;
        const finish = (err?: Error, m?: RegExpMatchArray) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (err) {
            child.kill('SIGKILL');
            reject(err);
          } else resolve({ child, match: m!, output });
        };
        const timer = setTimeout(() => finish(new Error(`[${name}] ${cmd} ${args.join(' ')} not ready within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
        const check = () => {
          const m = output().match(ready);
          if (m) finish(undefined, m);
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('exit', (code, sig) => finish(new Error(`[${name}] ${cmd} ${args.join(' ')} exited (${String(code ?? sig)}) before ready:\n${output()}`)));
      });
    },
    run(cmd, args, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      return new Promise((resolve, reject) => {
        const child = spawnIn(cmd, args, opts.env);
        child.stdin!.end();
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`[${name}] ${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
        }, timeoutMs);
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
      });
    },
  };
}
