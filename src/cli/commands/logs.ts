/** `nexus logs TASK|JOB [-f]`: a task's output (or every task of a job, prefixed by shard). */
import { InvalidArgumentError, type Command } from 'commander';
import { jobIdOfTask } from '../../compute/ids.js';
import { NexusError } from '../../errors/catalogue.js';
import type { LogEntry } from '../../compute/types.js';
import { clientFor, wantsJson } from '../context.js';
import { printJson } from '../output.js';
import { printStream } from './jobs.js';

function attempt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('an attempt number (0 is the first)');
  return n;
}

export function logsCommand(program: Command): void {
  program.command('logs <id>').description('print the output of a task (ID-<shard>), or of every task of a job (prefixed by shard)')
    .option('-f, --follow', 'keep printing live output until the task (or job) ends')
    .option('--attempt <n>', 'only this attempt of a task (0 is the first)', attempt)
    .option('--tenant <name>')
    .option('--json', 'print JSON (log entries)')
    .action(async (id: string, o: { follow?: boolean; attempt?: number; tenant?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      const isJob = jobIdOfTask(id) === undefined;
      try {
        if (o.follow && !wantsJson(cmd)) {
          const stream = isJob
            ? client.logs.followJob(id, o.tenant ? { tenant: o.tenant } : {})
            : client.logs.follow(id, { ...(o.attempt !== undefined ? { attempt: o.attempt } : {}), ...(o.tenant ? { tenant: o.tenant } : {}) });
          const end = await printStream(stream, isJob);
          if (!end) throw new NexusError('NEXUS_E_CONNECT', { addr: client.transport.options.addr, detail: `the log stream ended before ${isJob ? 'job' : 'task'} ${id} did (is the server stopping?)` });
          return;
        }
        const { items } = isJob ? await client.logs.job(id, o.tenant) : await client.logs.get(id, { ...(o.attempt !== undefined ? { attempt: o.attempt } : {}), ...(o.tenant ? { tenant: o.tenant } : {}) });
        if (wantsJson(cmd)) return printJson({ items });
        await printStream((async function* () {
          yield { event: 'log', data: items as LogEntry[] };
        })(), isJob);
      } finally {
        client.close();
      }
    });
}
