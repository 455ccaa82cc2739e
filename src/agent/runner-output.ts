/**
 * What a run of the task runner produces, on its way to the server: the output, shipped in
 * batches (skipping what an earlier agent process already shipped, capped per run), the result
 * file, and the exit described in words for the task's message.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { NexusClient } from '../client/client.js';
import type { RunSpec, TaskStatusReport } from '../compute/types.js';
import type { LogChunk, RunningTask, TaskExit } from './drivers/types.js';
import { MOVED, type LocalRun, type RunRecord } from './runs.js';

/** What log shipping needs from its runner. */
export interface LogShipping {
  client: NexusClient;
  deviceId: string;
  /** Ship at least this often while a task writes, ms. */
  batchMs: number;
  /** …or once this much is buffered, bytes. */
  batchBytes: number;
  /** Output shipped per run at most, bytes. */
  logLimit: number;
  /** Whether the runner has stopped. */
  stopped: () => boolean;
  /** Calls `fn` until it succeeds, the error is not transient, or the runner stops. */
  retry: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Writes the run record beside the work dir. */
  saveRec: (rec: RunRecord, name: string) => Promise<void>;
  onError: (err: unknown) => void;
}

/** Ships a run's output: skips what an earlier agent process already shipped, batches the rest. */
export async function shipLogs(ctx: LogShipping, run: LocalRun, rt: RunningTask, rec: RunRecord): Promise<void> {
  const { client, deviceId, batchMs, batchBytes, logLimit, stopped, retry, saveRec, onError } = ctx;
  const skip = { ...rec.sent };
  let buf: LogChunk[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let chain = Promise.resolve();
  const post = async (chunks: LogChunk[], truncated: boolean) => {
    if (run.gone || stopped()) return;
    const seq = rec.seq;
    try {
      await retry(() => client.tasks.postLogs(run.task.id, {
        deviceId, attempt: rec.attempt, run: rec.run, seq, chunks: chunks.length > 0 ? chunks : [{ stream: 'stderr', data: '', ts: Date.now() }],
        ...(truncated ? { truncated: true } : {}),
      }));
      rec.seq = seq + 1;
      for (const c of chunks) rec.sent[c.stream] += c.data.length;
      await saveRec(rec, run.name);
    } catch (e) {
      if (MOVED(e)) run.gone ??= (e as Error).message;
      else if (!stopped()) onError(e);
    }
  };
  const flush = (truncated = false) => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (buf.length === 0 && !truncated) return chain;
    const chunks = buf;
    buf = [];
    bytes = 0;
    chain = chain.then(() => post(chunks, truncated));
    return chain;
  };
  for await (const c of rt.logs) {
    if (stopped()) return;
    let data = c.data;
    if (skip[c.stream] > 0) {
      const n = Math.min(skip[c.stream], data.length);
      skip[c.stream] -= n;
      data = data.slice(n);
      if (!data) continue;
    }
    if (rec.truncated) continue;
    const size = Buffer.byteLength(data);
    if (rec.shipped + size > logLimit) {
      rec.truncated = true;
      await flush(true);
      continue;
    }
    rec.shipped += size;
    buf.push({ stream: c.stream, data, ts: c.ts });
    bytes += size;
    if (bytes >= batchBytes) await flush();
    else timer ??= setTimeout(() => void flush(), batchMs);
  }
  await flush();
  await chain;
}

/** The result file, up to `resultLimit` bytes, as the report carries it (base64 unless it is UTF-8). */
export async function readResult(path: string | undefined, resultLimit: number): Promise<TaskStatusReport['result'] | undefined> {
  if (!path || !existsSync(path)) return undefined;
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(Math.min(size, resultLimit));
    await fh.read(buf, 0, buf.length, 0);
    const text = buf.toString('utf8');
    const utf8 = Buffer.from(text, 'utf8').equals(buf);
    return { data: utf8 ? text : buf.toString('base64'), encoding: utf8 ? 'utf8' : 'base64', truncated: size > buf.length, size };
  } finally {
    await fh.close();
  }
}

/** Why a run did not succeed, in words (undefined for a clean exit). */
export function describeExit(exit: TaskExit, spec?: RunSpec): string | undefined {
  switch (exit.reason) {
    case 'exited':
      if (exit.exitCode === 0) return undefined;
      return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    case 'timeout':
      return `timed out after ${spec?.timeoutSeconds ?? '?'} s${exit.message ? `: ${exit.message}` : ''}`;
    case 'oom':
      return `killed for using more than its memory limit${spec ? ` (${spec.memoryBytes} bytes)` : ''}`;
    case 'cancelled':
      return exit.message ?? 'cancelled';
    default:
      return exit.message ?? exit.reason;
  }
}
