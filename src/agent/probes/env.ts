import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecResult, ProbeEnv } from './types.js';

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined; // missing, EINVAL on a sysfs attribute, EACCES ...
  }
}

async function listDir(path: string): Promise<string[] | undefined> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return undefined;
  }
}

/**
 * The real machine: node:fs from '/' and child_process.execFile with a timeout
 * (default 5 s; a timed-out command answers code 124). ENOENT → undefined.
 *
 * @example
 * const report = await runProbes(hostProbeEnv());
 */
export function hostProbeEnv(opts: { timeoutMs?: number } = {}): ProbeEnv {
  const root = '/';
  const defaultTimeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    root,
    platform: process.platform,
    arch: process.arch,
    readFile: (path) => readText(join(root, path)),
    readDir: (path) => listDir(join(root, path)),
    exec: (cmd, args, execOpts) =>
      new Promise<ExecResult | undefined>((resolve) => {
        const timeout = execOpts?.timeoutMs ?? defaultTimeout;
        execFile(cmd, args, { timeout, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (!err) return resolve({ code: 0, stdout, stderr });
          const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
          if (e.code === 'ENOENT') return resolve(undefined);
          if (e.killed) return resolve({ code: 124, stdout, stderr: `${stderr}\n${cmd} timed out after ${timeout} ms` });
          resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout: stdout ?? '', stderr: stderr || e.message });
        });
      }),
  };
}

/**
 * One recorded command in a fixture's exec.json. The key is the command line
 * (`cmd` and args joined by single spaces); an invocation also matches the
 * longest key that is a prefix of it ending at a space or '=', so `"sysctl"`
 * answers every sysctl call and `"nvidia-smi --query-gpu"` every GPU query. Unrecorded commands behave as "not installed".
 */
export interface RecordedExec {
  code?: number;
  stdout?: string;
  /** path relative to the fixture dir holding stdout verbatim (for long outputs) */
  stdoutFile?: string;
  stderr?: string;
  /** where the output came from; documentation only */
  source?: string;
}

/**
 * A fixture machine: files are read from `dir` (so `/proc/cpuinfo` is
 * `<dir>/proc/cpuinfo`) and commands are replayed from `<dir>/exec.json`.
 * See test/fixtures/probes/README.md.
 *
 * @example
 * const env = fixtureProbeEnv('test/fixtures/probes/raspberry-pi-4', 'linux', 'arm64');
 * const { capabilities } = await runProbes(env, [osProbe, cpuProbe]);
 */
export function fixtureProbeEnv(dir: string, platform: NodeJS.Platform, arch: string): ProbeEnv {
  let recorded: Promise<Record<string, RecordedExec>> | undefined;
  const load = () =>
    (recorded ??= readText(join(dir, 'exec.json')).then((text) => (text ? (JSON.parse(text) as Record<string, RecordedExec>) : {})));
  return {
    root: dir,
    platform,
    arch,
    readFile: (path) => readText(join(dir, path)),
    readDir: (path) => listDir(join(dir, path)),
    exec: async (cmd, args) => {
      const table = await load();
      const line = [cmd, ...args].join(' ');
      const key = Object.keys(table)
        .filter((k) => k === line || line.startsWith(`${k} `) || line.startsWith(`${k}=`))
        .sort((a, b) => b.length - a.length)[0];
      if (key === undefined) return undefined;
      const rec = table[key]!;
      const stdout = rec.stdoutFile !== undefined ? ((await readText(join(dir, rec.stdoutFile))) ?? '') : (rec.stdout ?? '');
      return { code: rec.code ?? 0, stdout, stderr: rec.stderr ?? '' };
    },
  };
}
