/**
 * The one conformance suite every TaskDriver passes unchanged. Drivers' test files call
 * `runDriverConformance` with a factory; commands are plain `sh` so a container image with a
 * POSIX shell (busybox, alpine, debian) serves the podman driver too.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupExists, isAlive, sleep } from './proc.js';
import type { LogChunk, RunningTask, TaskDriver, TaskExit, TaskRunSpec } from './types.js';

export interface DriverConformanceOptions {
  /** A fresh driver object; called again to play "the agent restarted". */
  makeDriver: () => TaskDriver;
  /** Skip the whole suite, with the reason shown in the test output. */
  skip?: string | false;
  /** Container image for drivers that need one. */
  image?: string;
  /** The test process can see the task's processes by pid (exec): check grandchildren die too. */
  hostProcesses?: boolean;
  /** Per-test limit. @default 30000 */
  testTimeoutMs?: number;
}

export async function collectLogs(task: RunningTask): Promise<{ stdout: string; stderr: string; chunks: LogChunk[] }> {
  const chunks: LogChunk[] = [];
  for await (const c of task.logs) chunks.push(c);
  const join2 = (s: LogChunk['stream']) => chunks.filter((c) => c.stream === s).map((c) => c.data).join('');
  return { stdout: join2('stdout'), stderr: join2('stderr'), chunks };
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Polls until `fn` returns a value (not undefined) or the time is up. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

let seq = 0;

export function runDriverConformance(driverName: string, options: DriverConformanceOptions): void {
  const limit = options.testTimeoutMs ?? 30_000;
  const skip = options.skip || false;

  describe(`TaskDriver conformance: ${driverName}`, { skip }, () => {
    let root: string;
    let driver: TaskDriver;
    const started: RunningTask[] = [];

    const spec = (name: string, script: string, extra: Partial<TaskRunSpec> = {}): TaskRunSpec => {
      const taskId = `conf-${process.pid}-${++seq}-${name}`;
      return {
        taskId,
        command: ['sh', '-c', script],
        env: {},
        workDir: join(root, taskId),
        ...(options.image ? { image: options.image } : {}),
        ...extra,
      };
    };
    const start = async (s: TaskRunSpec, d: TaskDriver = driver) => {
      const t = await d.start(s);
      started.push(t);
      return t;
    };
    const waitFor = (t: RunningTask, ms = limit - 2000): Promise<TaskExit> => withTimeout(t.wait(), ms, `task ${t.taskId} to end`);

    before(() => {
      root = mkdtempSync(join(tmpdir(), `nexus-drv-${driverName}-`));
      driver = options.makeDriver();
    });

    after(async () => {
      // nothing outlives the suite: stop whatever a failed assertion left running
      await Promise.all(started.map((t) => withTimeout(t.cancel('conformance cleanup'), 20_000, 'cleanup').catch(() => {})));
      rmSync(root, { recursive: true, force: true });
    });

    it('propagates exit codes', { timeout: limit }, async () => {
      const ok = await start(spec('ok', 'exit 0'));
      const bad = await start(spec('bad', 'exit 3'));
      const [a, b] = await Promise.all([waitFor(ok), waitFor(bad)]);
      assert.equal(a.reason, 'exited');
      assert.equal(a.exitCode, 0);
      assert.equal(b.reason, 'exited');
      assert.equal(b.exitCode, 3);
      assert.ok(typeof b.durationMs === 'number' && b.durationMs >= 0);
    });

    it('captures stdout and stderr, each in order; stdout is the result when no result file is written', { timeout: limit }, async () => {
      const t = await start(spec('streams', 'echo one; echo two >&2; echo three; echo four >&2'));
      const logs = await collectLogs(t);
      const exit = await waitFor(t);
      assert.equal(logs.stdout, 'one\nthree\n');
      assert.equal(logs.stderr, 'two\nfour\n');
      assert.ok(exit.resultPath, 'a result path');
      assert.equal(readFileSync(exit.resultPath, 'utf8'), 'one\nthree\n');
      // a second iteration replays the captured logs from the start
      assert.equal((await collectLogs(t)).stdout, 'one\nthree\n');
    });

    it('streams logs live: the first line arrives before the task exits', { timeout: limit }, async () => {
      const t = await start(spec('live', 'echo first; sleep 0.4; echo second'));
      let ended = false;
      void t.wait().then(() => (ended = true));
      const seen: { data: string; endedAlready: boolean }[] = [];
      for await (const c of t.logs) {
        if (c.stream === 'stdout') seen.push({ data: c.data, endedAlready: ended });
      }
      assert.ok(seen.length >= 2, `two chunks, got ${JSON.stringify(seen)}`);
      assert.equal(seen[0]!.data, 'first\n');
      assert.equal(seen[0]!.endedAlready, false, 'first line streamed before exit');
      assert.equal(seen.map((s) => s.data).join(''), 'first\nsecond\n');
      assert.equal((await waitFor(t)).exitCode, 0);
    });

    it('sets env, task id, shard and work-dir variables, and writes spec.files', { timeout: limit }, async () => {
      const t = await start(
        spec('env', 'printf "%s|%s|%s|%s|%s|" "$FOO" "$NEXUS_TASK_ID" "$NEXUS_SHARD_INDEX" "$NEXUS_SHARD_COUNT" "$(cat input/data.txt)"; [ "$PWD" = "$NEXUS_WORK_DIR" ] && echo same-dir', {
          env: { FOO: 'bar baz', NEXUS_TASK_ID: 'spoofed' },
          shard: { index: 2, count: 5 },
          files: { 'input/data.txt': 'payload' },
        }),
      );
      const logs = await collectLogs(t);
      assert.equal((await waitFor(t)).exitCode, 0, logs.stderr);
      assert.equal(logs.stdout, `bar baz|${t.taskId}|2|5|payload|same-dir\n`);

      const d = await start(spec('shard-default', 'echo "$NEXUS_SHARD_INDEX/$NEXUS_SHARD_COUNT"'));
      assert.equal((await collectLogs(d)).stdout, '0/1\n');
    });

    it('uses NEXUS_RESULT_FILE as the result when the task writes it', { timeout: limit }, async () => {
      const t = await start(spec('result', 'echo noise; echo 42 > "$NEXUS_RESULT_FILE"'));
      const exit = await waitFor(t);
      assert.equal(exit.exitCode, 0);
      assert.ok(exit.resultPath);
      assert.equal(readFileSync(exit.resultPath, 'utf8'), '42\n');
    });

    it('times out: kills the whole process group, grandchildren included', { timeout: limit }, async () => {
      const t = await start(spec('timeout', 'sleep 100 & echo $! > grandchild.pid; sleep 100', { timeoutSeconds: 0.5 }));
      const exit = await waitFor(t);
      assert.equal(exit.reason, 'timeout');
      assert.notEqual(exit.exitCode, 0); // null + signal for a process; a runtime's own code (143, 137) for a container client
      assert.ok(exit.durationMs >= 400 && exit.durationMs < 15_000, `duration ${exit.durationMs}`);
      if (options.hostProcesses) await assertGroupGone(t, join(root, t.taskId, 'grandchild.pid'));
    });

    it('cancel kills the whole process group and records the reason', { timeout: limit }, async () => {
      const t = await start(spec('cancel', 'sleep 100 & echo $! > grandchild.pid; sleep 100'));
      const pidFile = join(root, t.taskId, 'grandchild.pid');
      await eventually(() => (safeRead(pidFile) ? true : undefined), 10_000, 'the grandchild to start');
      await withTimeout(t.cancel('user asked'), limit - 2000, 'cancel');
      const exit = await waitFor(t);
      assert.equal(exit.reason, 'cancelled');
      assert.match(exit.message ?? '', /user asked/);
      if (options.hostProcesses) await assertGroupGone(t, pidFile);
      // cancelling again, or after the end, changes nothing
      await t.cancel('again');
      assert.equal((await t.wait()).reason, 'cancelled');
    });

    it('cancel after the task ended keeps its exit', { timeout: limit }, async () => {
      const t = await start(spec('late-cancel', 'exit 4'));
      await waitFor(t);
      await t.cancel('too late');
      const exit = await t.wait();
      assert.equal(exit.reason, 'exited');
      assert.equal(exit.exitCode, 4);
    });

    it('reports start-failed with a clear reason for a missing binary (no throw)', { timeout: limit }, async () => {
      const s = spec('missing', '');
      s.command = ['nexus-no-such-binary-7f3a', '--flag'];
      const t = await start(s);
      const exit = await waitFor(t);
      assert.equal(exit.reason, 'start-failed');
      assert.equal(exit.exitCode, null);
      assert.match(exit.message ?? '', /nexus-no-such-binary-7f3a/);
    });

    it('reports start-failed for an invalid spec (no throw)', { timeout: limit }, async () => {
      const s = spec('invalid', 'true');
      s.taskId = '../../etc';
      const exit = await waitFor(await start(s));
      assert.equal(exit.reason, 'start-failed');
      assert.match(exit.message ?? '', /taskId/);
    });

    it('reattach: a new driver object finds a running task and can cancel it', { timeout: limit }, async () => {
      const s = spec('reattach-live', 'echo up; sleep 100');
      const first = await start(s);
      await withTimeout(firstChunk(first), limit - 5000, 'first log line');
      const again = options.makeDriver();
      const found = await again.reattach(s.taskId, s.workDir);
      assert.equal(found.status, 'running');
      if (found.status !== 'running') return;
      started.push(found.task);
      assert.equal(found.task.pid, first.pid);
      assert.equal(found.task.taskId, s.taskId);
      await withTimeout(found.task.cancel('drain'), limit - 2000, 'cancel via reattached handle');
      const exit = await waitFor(found.task);
      assert.equal(exit.reason, 'cancelled');
      assert.deepEqual(await waitFor(first), exit, 'both handles see the same exit');
      assert.equal((await collectLogs(found.task)).stdout, 'up\n');
    });

    it('reattach: reports the exit code of a task that finished while nobody watched', { timeout: limit }, async () => {
      const s = spec('reattach-done', 'echo bye; exit 7');
      await start(s); // never waited on: "the agent" is gone
      const again = options.makeDriver();
      const found = await eventually(async () => {
        const r = await again.reattach(s.taskId, s.workDir);
        return r.status === 'finished' ? r : undefined;
      }, limit - 5000, 'the task to be reported finished');
      assert.equal(found.exit.reason, 'exited');
      assert.equal(found.exit.exitCode, 7);
      assert.equal((await collectLogs(found.task)).stdout, 'bye\n');
      assert.deepEqual(await found.task.wait(), found.exit);
    });

    it('reattach: says not-found for a work dir without a task', { timeout: limit }, async () => {
      const r = await options.makeDriver().reattach('nothing-here', join(root, 'never-used'));
      assert.equal(r.status, 'not-found');
      if (r.status === 'not-found') assert.ok(r.reason.length > 0);
    });

    it('reports whether limits are enforced, with a reason when not', { timeout: limit }, async () => {
      const l = await driver.limits();
      assert.equal(typeof l.enforced, 'boolean');
      if (!l.enforced) assert.ok(l.reason && l.reason.length > 0);
      const t = await start(spec('limits', 'true', { cpuMillis: 500, memoryBytes: 256 * 1024 * 1024 }));
      assert.equal(typeof t.limits.enforced, 'boolean');
      if (!t.limits.enforced) assert.ok(t.limits.reason);
      await waitFor(t);
    });
  });
}

async function firstChunk(t: RunningTask): Promise<LogChunk | undefined> {
  for await (const c of t.logs) return c;
  return undefined;
}

function safeRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The task's main process, its recorded grandchild and its whole group are gone. */
async function assertGroupGone(t: RunningTask, grandchildPidFile: string): Promise<void> {
  assert.ok(t.pid, 'task has a pid');
  const gc = Number(safeRead(grandchildPidFile));
  assert.ok(gc > 0, 'grandchild pid recorded');
  // orphaned grandchildren are reaped by init, which may take a moment
  await eventually(async () => ((await isAlive(t.pid!)) || (await isAlive(gc)) || groupExists(t.pid!) ? undefined : true), 5000, 'task processes to die');
  assert.equal(await isAlive(t.pid!), false, 'main process gone');
  assert.equal(await isAlive(gc), false, 'grandchild gone');
  assert.equal(groupExists(t.pid!), false, 'process group empty');
}
