/**
 * `nexus run [options] -- CMD ARGS…`: submit a job. `--wait` streams its output live and exits
 * with its exit code; `--json` prints the job (with its `id`) and returns at once.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, basename } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { NexusError } from '../../errors/catalogue.js';
import { TIERS } from '../../resources/device.js';
import { DRIVERS, type JobSpec } from '../../resources/job.js';
import { clientFor, wantsJson } from '../context.js';
import { printJson } from '../output.js';
import { jobExitCode, oneOf, printStream } from './jobs.js';

export function runCommand(program: Command): void {
  program.command('run').description('run a command on the pool: nexus run [options] -- CMD ARGS…')
    .argument('[command...]', 'the command and its arguments (after --)')
    .option('--spec <file>', 'a JSON job spec (flags given too override it)')
    .option('--name <name>', 'job name')
    .option('--count <n>', 'number of shards (each gets NEXUS_SHARD_INDEX / NEXUS_SHARD_COUNT)', int(1, 100_000))
    .option('--cpu <millis>', 'CPU per task in millicores (1000 = one core; default 100)', millis)
    .option('--memory <size>', 'memory per task: 512M, 4G, 1.5Gi… (default 128M)', size)
    .option('--gpus <n>', 'GPUs per task', int(1, 64))
    .option('--gpu-model <pattern>', 'GPU name glob (*A100*) or /regex/')
    .option('--gpu-vram <size>', 'memory every chosen GPU must have', size)
    .option('--priority <p>', '0-100 (default 50); ≥ 10 points higher may preempt', int(0, 100))
    .option('--timeout <seconds>', 'stop a task after this long', int(1, 365 * 86_400))
    .option('--retries <n>', 'retries after a failed attempt', int(0, 100))
    .option('--backoff <seconds>', 'delay before the first retry, doubled each time (default 10)', num(0, 86_400))
    .option('--label <k=v>', 'only devices with this label (repeatable)', collect)
    .option('--tier <tier>', `only devices of this tier: ${TIERS.join(', ')} (repeatable)`, collect)
    .option('--driver <driver>', 'exec | podman (default exec; podman when --image is given)', oneOf(DRIVERS))
    .option('--image <image>', 'container image (podman driver)')
    .option('--env <K=V>', 'environment variable (repeatable)', collect)
    .option('--file <path>', 'put a local file (or every file of a directory) into each task\'s work dir (repeatable)', collect)
    .option('--aggregate <command>', 'a shell command run once after every shard succeeded; it finds their results in $NEXUS_SHARD_RESULTS_DIR/<i>')
    .option('--spread', 'spread shards over devices instead of packing them')
    .option('--tenant <name>', 'tenant (admins)')
    .option('--wait', 'stream the output live and exit with the task\'s exit code')
    .option('--json', 'print the job as JSON')
    .addHelpText('after', `
Examples:
  nexus run --wait -- python train.py --epochs 3
  nexus run --gpus 1 --memory 16G --retries 2 -- ./finetune.sh
  nexus run --count 4 --file shard.sh --file corpus --aggregate 'sh aggregate.sh' --wait -- sh shard.sh
  nexus run --spec job.json --wait`)
    .action(async (command: string[], o: RunOptions, cmd: Command) => {
      const spec = buildSpec(command, o);
      const client = clientFor(cmd);
      try {
        const job = await client.jobs.create(spec as never, o.tenant);
        if (!o.wait) {
          if (wantsJson(cmd)) return printJson(job);
          process.stdout.write(`${job.id}\n`);
          process.stderr.write(`job ${job.id} submitted (${job.tasks.length} task${job.tasks.length === 1 ? '' : 's'}); follow it with: nexus logs ${job.id} -f\n`);
          return;
        }
        const count = spec.count ?? 1;
        const end = await printStream(client.logs.followJob(job.id, o.tenant ? { tenant: o.tenant } : {}), count > 1 || spec.aggregate !== undefined, wantsJson(cmd));
        if (!end) throw new NexusError('NEXUS_E_CONNECT', { addr: client.transport.options.addr, detail: `the log stream ended before job ${job.id} did (is the server stopping?); the job goes on: nexus job show ${job.id}` });
        const final = await client.jobs.get(job.id, o.tenant);
        if (wantsJson(cmd)) printJson(final);
        else if (final.state !== 'succeeded') {
          process.stderr.write(`nexus: job ${final.id} ${end?.state ?? final.state}${final.message ? `: ${final.message}` : ''}\n`);
        }
        process.exitCode = jobExitCode(final);
      } finally {
        client.close();
      }
    });
}

export interface RunOptions {
  spec?: string; name?: string; count?: number; cpu?: number; memory?: number; gpus?: number; gpuModel?: string; gpuVram?: number;
  priority?: number; timeout?: number; retries?: number; backoff?: number; label?: string[]; tier?: string[]; driver?: 'exec' | 'podman';
  image?: string; env?: string[]; file?: string[]; aggregate?: string; spread?: boolean; tenant?: string; wait?: boolean; json?: boolean;
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function int(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`a whole number from ${min} to ${max}`);
    return n;
  };
}

function num(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`a number from ${min} to ${max}`);
    return n;
  };
}

/** `500`, `500m` → 500 millicores. */
export function millis(v: string): number {
  const m = /^(\d+)m?$/.exec(v.trim());
  if (!m || Number(m[1]) < 1) throw new InvalidArgumentError('millicores: a whole number ≥ 1, e.g. 500 or 500m (1000 = one core)');
  return Number(m[1]);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, ki: 1024, kb: 1024, m: 1024 ** 2, mi: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gi: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, ti: 1024 ** 4, tb: 1024 ** 4 };

/** `4G`, `512Mi`, `1.5g`, `1048576` → bytes (binary units). */
export function size(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError('a size such as 512M, 4G, 1.5Gi or a number of bytes');
  const n = Math.round(Number(m[1]) * unit);
  if (n < 1) throw new InvalidArgumentError('a size of at least 1 byte');
  return n;
}

function pairs(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list) {
    const i = p.indexOf('=');
    if (i <= 0) throw new NexusError('NEXUS_E_VALIDATION', { field: what, detail: `${JSON.stringify(p)} is not KEY=VALUE` });
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** Local files for `--file`: a file, or every file under a directory; paths relative to the cwd when inside it. */
function localFiles(paths: string[]): { path: string; content: string; mode?: number }[] {
  const out: { path: string; content: string; mode?: number }[] = [];
  const add = (abs: string, rel: string) => {
    const st = statSync(abs);
    if (st.isDirectory()) {
      for (const n of readdirSync(abs).sort()) add(join(abs, n), `${rel}/${n}`);
      return;
    }
    out.push({ path: rel, content: readFileSync(abs, 'utf8'), ...(st.mode & 0o111 ? { mode: st.mode & 0o777 } : {}) });
  };
  for (const p of paths) {
    const abs = isAbsolute(p) ? p : join(process.cwd(), p);
    const rel = relative(process.cwd(), abs);
    add(abs, !rel || rel.startsWith('..') || isAbsolute(rel) ? basename(abs) : rel);
  }
  return out;
}

export function buildSpec(command: string[], opts: RunOptions): JobSpec {
  const o = { ...opts, label: opts.label ?? [], tier: opts.tier ?? [], env: opts.env ?? [], file: opts.file ?? [] };
  let spec: Partial<JobSpec> = {};
  if (o.spec) {
    try {
      spec = JSON.parse(readFileSync(o.spec, 'utf8')) as Partial<JobSpec>;
    } catch (e) {
      throw new NexusError('NEXUS_E_CONFIG', { field: '--spec', detail: `${o.spec}: ${(e as Error).message}` });
    }
  }
  if (command.length > 0) spec.command = command;
  if (!spec.command || spec.command.length === 0) {
    throw new NexusError('NEXUS_E_VALIDATION', { field: 'command', detail: 'give the command after --, e.g. nexus run -- echo hi (or --spec FILE)' });
  }
  if (o.name) spec.name = o.name;
  if (o.count !== undefined) spec.count = o.count;
  const res = { cpuMillis: 100, memoryBytes: 128 * 1024 ** 2, ...(spec.resources ?? {}) };
  if (o.cpu !== undefined) res.cpuMillis = o.cpu;
  if (o.memory !== undefined) res.memoryBytes = o.memory;
  if (o.gpus !== undefined || o.gpuModel || o.gpuVram) {
    res.gpus = {
      ...(res.gpus ?? { count: 1 }),
      ...(o.gpus !== undefined ? { count: o.gpus } : {}),
      ...(o.gpuModel ? { model: o.gpuModel } : {}),
      ...(o.gpuVram ? { minVramBytes: o.gpuVram } : {}),
    };
  }
  spec.resources = res;
  if (o.priority !== undefined) spec.priority = o.priority;
  if (o.timeout !== undefined) spec.timeoutSeconds = o.timeout;
  if (o.retries !== undefined || o.backoff !== undefined) {
    spec.retry = { attempts: o.retries ?? spec.retry?.attempts ?? 0, backoffSeconds: o.backoff ?? spec.retry?.backoffSeconds ?? 10 };
  }
  if (o.label.length > 0 || o.tier.length > 0) {
    spec.constraints = {
      ...(spec.constraints ?? {}),
      ...(o.label.length > 0 ? { labels: { ...(spec.constraints?.labels ?? {}), ...pairs(o.label, 'label') } } : {}),
      ...(o.tier.length > 0 ? { tier: o.tier as never } : {}),
    };
  }
  if (o.image) spec.image = o.image;
  spec.driver = o.driver ?? spec.driver ?? (spec.image ? 'podman' : 'exec');
  if (o.env.length > 0) spec.env = { ...(spec.env ?? {}), ...pairs(o.env, 'env') };
  if (o.file.length > 0) spec.workdir = { files: [...(spec.workdir?.files ?? []), ...localFiles(o.file)] };
  if (o.aggregate) spec.aggregate = { ...(spec.aggregate ?? {}), command: ['sh', '-c', o.aggregate] };
  if (o.spread) spec.spread = true;
  return spec as JobSpec;
}
