/** `nexus jobs`, `nexus job show|cancel|result|events ID`, `nexus tasks`: jobs and their tasks. */
import { InvalidArgumentError, type Command } from 'commander';
import type { NexusClient } from '../../client/client.js';
import type { JobView, LogEntry, TaskDoc, TaskResult } from '../../compute/types.js';
import { JOB_STATES, TASK_STATES } from '../../resources/job.js';
import type { SseMessage } from '../../compute/sse.js';
import { clientFor, wantsJson } from '../context.js';
import { formatBytes, printJson, printTable } from '../output.js';

export function oneOf<T extends string>(values: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(values as readonly string[]).includes(v)) throw new InvalidArgumentError(`use one of ${values.join(', ')}`);
    return v as T;
  };
}

const shortTime = (iso: string | undefined) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : undefined);

export function shardLabel(t: Pick<TaskDoc, 'shardIndex'>): string {
  return t.shardIndex < 0 ? 'aggregate' : String(t.shardIndex);
}

function taskReason(t: TaskDoc): string | undefined {
  if (t.state === 'pending') return t.pendingReason ?? (t.notBefore ? `waiting until ${shortTime(t.notBefore)}` : undefined);
  return t.message;
}

export function printTasks(tasks: TaskDoc[], withJob = false): void {
  printTable(tasks, [
    ...(withJob ? [['TASK', (t: TaskDoc) => t.id] as [string, (t: TaskDoc) => string]] : [['SHARD', shardLabel] as [string, (t: TaskDoc) => string]]),
    ['STATE', (t) => t.state], ['ATTEMPT', (t) => t.attempt], ['DEVICE', (t) => t.deviceId], ['EXIT', (t) => t.exitCode],
    ['REASON', (t) => taskReason(t)],
  ]);
}

export function showJob(j: JobView): void {
  const s = j.spec;
  const r = s.resources;
  const rows: [string, string | number | undefined][] = [
    ['id', j.id], ['name', s.name], ['tenant', j.tenant], ['state', j.state], ['message', j.message],
    ['command', s.command.join(' ')], ['driver', s.driver + (s.image ? ` (${s.image})` : '')],
    ['resources', `${r.cpuMillis}m CPU, ${formatBytes(r.memoryBytes)}${r.gpus ? `, ${r.gpus.count} GPU${r.gpus.count > 1 ? 's' : ''}` : ''}`],
    ['shards', s.count ?? 1], ['aggregate', s.aggregate?.command.join(' ')], ['priority', s.priority],
    ['retries', s.retry ? `${s.retry.attempts} (backoff ${s.retry.backoffSeconds} s)` : undefined],
    ['created', shortTime(j.createdAt)], ['updated', shortTime(j.updatedAt)],
    ['tasks', Object.entries(j.counts).map(([k, v]) => `${v} ${k}`).join(', ')],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) if (v !== undefined && v !== '') process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  process.stdout.write('\n');
  printTasks(j.tasks);
  if (j.tasksTruncated) process.stdout.write(`(only the first ${j.tasks.length} tasks; nexus tasks --job ${j.id} lists all)\n`);
}

export function writeResult(r: TaskResult): void {
  process.stdout.write(r.encoding === 'base64' ? Buffer.from(r.data, 'base64') : r.data);
  if (r.truncated) process.stderr.write(`nexus: the result was cut at ${r.data.length} bytes (the task wrote ${r.size})\n`);
}

/**
 * Prints a live log stream. With `prefix`, each line gets `[shard] ` (lines are buffered per task
 * and stream until complete). Notes on waiting/failing tasks go to stderr. Returns the `end` doc.
 */
export async function printStream(stream: AsyncIterable<SseMessage>, prefix: boolean, quiet = false): Promise<{ state: string } | undefined> {
  const partial = new Map<string, string>();
  const lastNote = new Map<string, string>();
  const out = (l: LogEntry, text: string) => (l.stream === 'stderr' ? process.stderr : process.stdout).write(text);
  const label = (l: LogEntry) => `[${l.shardIndex === undefined ? l.taskId : l.shardIndex < 0 ? 'aggregate' : l.shardIndex}] `;
  const note = (t: TaskDoc, text: string) => {
    if (quiet || lastNote.get(t.id) === text) return;
    lastNote.set(t.id, text);
    process.stderr.write(`nexus: ${prefix ? `[${shardLabel(t)}] ` : ''}${text}\n`);
  };
  let end: { state: string } | undefined;
  for await (const m of stream) {
    if (m.event === 'log' && !quiet) {
      for (const l of m.data as LogEntry[]) {
        if (!prefix) {
          out(l, l.data);
          continue;
        }
        const key = `${l.taskId}/${l.stream}`;
        const text = (partial.get(key) ?? '') + l.data;
        const lines = text.split('\n');
        partial.set(key, lines.pop()!);
        for (const line of lines) out(l, `${label(l)}${line}\n`);
      }
    } else if (m.event === 'task') {
      const t = m.data as TaskDoc;
      if (t.state === 'pending' && t.pendingReason) note(t, `waiting: ${t.pendingReason}`);
      else if (t.state === 'failed' || t.state === 'lost') note(t, `task ${t.id} attempt ${t.attempt} ${t.state}${t.message ? `: ${t.message}` : ''}`);
    } else if (m.event === 'end') {
      end = m.data as { state: string };
    } else if (m.event === 'error') {
      throw new Error(`the log stream failed: ${JSON.stringify(m.data)}`);
    }
  }
  if (!quiet) {
    for (const [key, rest] of partial) {
      if (!rest) continue;
      const [taskId, stream] = key.split('/');
      const suffix = taskId!.slice(taskId!.indexOf('-') + 1);
      (stream === 'stderr' ? process.stderr : process.stdout).write(`[${suffix}] ${rest}\n`);
    }
  }
  return end;
}

/** The exit code a finished job stands for: 0, a failed task's own code, or 1. */
export function jobExitCode(j: JobView): number {
  if (j.state === 'succeeded') return 0;
  const failed = j.tasks.find((t) => t.state === 'failed' && t.exitCode !== undefined && t.exitCode !== 0);
  return failed?.exitCode ?? 1;
}

async function resolveJob(client: NexusClient, id: string, tenant?: string): Promise<JobView> {
  return client.jobs.get(id, tenant);
}

export function jobsCommand(program: Command): void {
  program.command('jobs').description('list jobs').option('--state <state>', JOB_STATES.join(' | '), oneOf(JOB_STATES))
    .option('--tenant <name>', 'tenant (admins: default all)').option('--json', 'print JSON')
    .action(async (o: { state?: string; tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      try {
        const { items } = await client.jobs.list({ ...(o.state ? { state: o.state } : {}), ...(o.tenant ? { tenant: o.tenant } : {}) });
        if (wantsJson(cmd)) return printJson({ items });
        printTable(items, [
          ['ID', (j) => j.id], ['NAME', (j) => j.spec.name], ['STATE', (j) => j.state], ['SHARDS', (j) => j.spec.count ?? 1],
          ['PRIORITY', (j) => j.spec.priority], ['TENANT', (j) => j.tenant], ['CREATED', (j) => shortTime(j.createdAt)],
          ['COMMAND', (j) => j.spec.command.join(' ').slice(0, 60)],
        ]);
      } finally {
        client.close();
      }
    });

  const job = program.command('job').description('one job: show it with its tasks, cancel it, print its result or events');
  job.command('show <id>').description('a job with its tasks and their states').option('--tenant <name>').option('--json', 'print JSON')
    .action(async (id: string, o: { tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      try {
        const j = await resolveJob(client, id, o.tenant);
        if (wantsJson(cmd)) return printJson(j);
        showJob(j);
      } finally {
        client.close();
      }
    });
  job.command('cancel <id>').description('cancel a job: tasks that have not ended are stopped').option('--tenant <name>').option('--json', 'print JSON')
    .action(async (id: string, o: { tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      try {
        const j = await client.jobs.cancel(id, o.tenant);
        if (wantsJson(cmd)) return printJson(j);
        process.stdout.write(`job ${j.id} ${j.state}\n`);
      } finally {
        client.close();
      }
    });
  job.command('result <id>').description("print the job's result (its aggregate step's, or its single task's)").option('--tenant <name>').option('--json', 'print JSON')
    .action(async (id: string, o: { tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      try {
        const r = await client.jobs.result(id, o.tenant);
        if (wantsJson(cmd)) return printJson(r);
        writeResult(r);
      } finally {
        client.close();
      }
    });
  job.command('events <id>').description('every state change of the job and its tasks').option('--tenant <name>').option('--json', 'print JSON')
    .action(async (id: string, o: { tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      try {
        const { items } = await client.jobs.events(id, o.tenant);
        if (wantsJson(cmd)) return printJson({ items });
        printTable(items, [
          ['AT', (e) => shortTime(e.at)], ['WHAT', (e) => e.taskId ?? `job ${e.jobId}`], ['FROM', (e) => e.from], ['TO', (e) => e.to],
          ['ATTEMPT', (e) => e.attempt], ['DEVICE', (e) => e.deviceId], ['REASON', (e) => e.reason],
        ]);
      } finally {
        client.close();
      }
    });

  program.command('tasks').description('list tasks').option('--job <id>', 'tasks of one job').option('--state <state>', TASK_STATES.join(' | '), oneOf(TASK_STATES))
    .option('--device <id>', 'tasks on one device').option('--tenant <name>').option('--json', 'print JSON')
    .action(async (o: { job?: string; state?: string; device?: string; tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      try {
        const { items } = await client.tasks.list({
          ...(o.job ? { job: o.job } : {}), ...(o.state ? { state: o.state as TaskDoc['state'] } : {}),
          ...(o.device ? { device: o.device } : {}), ...(o.tenant ? { tenant: o.tenant } : {}),
        });
        if (wantsJson(cmd)) return printJson({ items });
        printTasks(items, true);
      } finally {
        client.close();
      }
    });
}
