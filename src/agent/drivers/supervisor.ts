/**
 * The task supervisor: a tiny node process between the agent and one task.
 *
 *   node supervisor.js <workDir>
 *   node supervisor.js --warm IDLE_MS   (started ahead of need; the work dir comes on stdin)
 *
 * It reads `<workDir>/.nexus/launch.json`, starts the task in its own session and process group
 * (joining its cgroup first when it has one), with stdout/stderr going straight to files, records
 * pids and start times in state.json, enforces the timeout, turns SIGTERM into a cancel, and
 * writes exit.json when the task ends. It runs in its own session too, so the agent can die or
 * restart without taking the task or its exit status with it (see docs/adr/008-task-drivers.md).
 *
 * It is a script, never imported: only node built-ins and the drivers' own small modules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { format } from 'node:util';
import { killCgroup, joinArgv, oomKills, removeCgroup } from './cgroup.js';
import { killGroup, parseProcStat, type ProcessIdentity } from './proc.js';
import {
  readJson, taskPaths, writeJsonAtomic, WARM_UNUSED_EXIT,
  type CancelRecord, type ExitRecord, type LaunchSpec, type SupervisorState, type TaskPaths,
} from './protocol.js';
import type { TaskExitReason } from './types.js';

// `supervisor.js <workDir>`, or `supervisor.js --warm IDLE_MS`: started ahead of need, it reads
// its work dir from stdin (one line), so node's start-up is not on the task's critical path.
const arg = process.argv[2];
if (!arg) {
  console.error('usage: supervisor.js <workDir> | --warm IDLE_MS');
  process.exit(2);
}
let paths: TaskPaths = taskPaths(arg);

/** The work dir the agent hands over on stdin; undefined on EOF or after `idleMs`. */
function handedWorkDir(idleMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (dir?: string) => {
      clearTimeout(timer);
      process.stdin.removeAllListeners('data');
      process.stdin.destroy();
      resolve(dir);
    };
    const timer = setTimeout(() => done(), idleMs);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl));
    });
    process.stdin.once('end', () => done());
    process.stdin.once('error', () => done());
  });
}

/** A warm supervisor was started with its output going nowhere: from now on it logs to the task's supervisor.log. */
function logTo(path: string): void {
  try {
    const fd = openSync(path, 'a', 0o600);
    console.error = console.warn = console.log = (...a: unknown[]) => {
      try {
        writeSync(fd, `${format(...a)}\n`);
      } catch {
        /* nowhere left to log */
      }
    };
  } catch {
    /* keep the defaults */
  }
}

async function selfIdentity(pid: number): Promise<ProcessIdentity> {
  // read even a zombie's start time: the task may already have exited
  try {
    const st = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
    if (st) return { pid, startTime: st.startTime };
  } catch {
    /* not Linux, or already reaped */
  }
  const { processStartTime } = await import('./proc.js');
  return { pid, startTime: (await processStartTime(pid)) ?? '' };
}

/** The last non-empty line of a log (its final 4 KiB), for start-failure messages. */
async function lastLine(path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    const lines = text.slice(-4096).split('\n').map((l) => l.trim()).filter(Boolean);
    return lines.at(-1)?.slice(0, 500);
  } catch {
    return undefined;
  }
}

async function writeExit(launch: LaunchSpec | undefined, startedAt: number, fields: Omit<ExitRecord, 'durationMs' | 'finishedAt'>) {
  const finishedAt = Date.now();
  const rec: ExitRecord = {
    ...fields,
    durationMs: Math.max(0, finishedAt - startedAt),
    finishedAt,
  };
  if (!rec.resultPath && launch && fields.reason !== 'start-failed') {
    rec.resultPath = existsSync(launch.resultFile) ? launch.resultFile : paths.stdout;
  }
  await writeJsonAtomic(paths.exit, rec);
}

async function main(): Promise<void> {
  if (arg === '--warm') {
    const dir = await handedWorkDir(Number(process.argv[3]) || 600_000);
    if (!dir || !isAbsolute(dir)) process.exit(WARM_UNUSED_EXIT);
    paths = taskPaths(dir);
    logTo(paths.supervisorLog);
  }
  const launch = await readJson<LaunchSpec>(paths.launch);
  const startedAt = Date.now();
  if (!launch || launch.version !== 1 || !Array.isArray(launch.argv) || launch.argv.length === 0) {
    await writeExit(undefined, startedAt, { exitCode: null, reason: 'start-failed', message: `unreadable ${paths.launch}` });
    process.exit(0);
  }

  let child: ChildProcess | undefined;
  let exited = false;
  let terminating: { reason: TaskExitReason; message?: string } | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let timeoutTimer: NodeJS.Timeout | undefined;

  const terminate = async (reason: TaskExitReason) => {
    if (terminating || exited || !child?.pid) return;
    const pgid = child.pid;
    terminating = { reason };
    if (reason === 'cancelled') {
      const c = await readJson<CancelRecord>(paths.cancel);
      terminating.message = c?.reason ? `cancelled: ${c.reason}` : 'cancelled';
    } else if (reason === 'timeout') {
      terminating.message = `timed out after ${(launch.timeoutMs ?? 0) / 1000} s`;
    }
    let grace = launch.graceMs;
    if (launch.stopCommand && launch.stopCommand.length > 0) {
      // e.g. `podman stop`: the container runtime stops what our signals cannot reach
      const stop = spawn(launch.stopCommand[0]!, launch.stopCommand.slice(1), { stdio: 'ignore' });
      stop.on('error', (err) => console.error(`stop command failed: ${err.message}`));
      grace += 10_000;
    } else {
      killGroup(pgid, 'SIGTERM');
    }
    killTimer = setTimeout(() => {
      killGroup(pgid, 'SIGKILL');
      if (launch.cgroup) void killCgroup(launch.cgroup);
    }, grace);
  };

  process.on('SIGTERM', () => void terminate('cancelled'));
  process.on('SIGINT', () => void terminate('cancelled'));
  process.on('SIGHUP', () => {}); // no terminal to hang up on; never let it kill the supervisor

  const out = openSync(paths.stdout, 'a');
  const err = openSync(paths.stderr, 'a');
  const argv = launch.cgroup ? joinArgv(launch.cgroup, paths.joinFailed, launch.argv) : launch.argv;
  try {
    child = spawn(argv[0]!, argv.slice(1), { cwd: launch.cwd, env: launch.env, stdio: ['ignore', out, err], detached: true });
  } catch (e) {
    closeSync(out);
    closeSync(err);
    await writeExit(launch, startedAt, { exitCode: null, reason: 'start-failed', message: `cannot start ${launch.argv[0]}: ${(e as Error).message}` });
    if (launch.cgroup) await removeCgroup(launch.cgroup);
    process.exit(0);
  }
  closeSync(out);
  closeSync(err);

  let stateWritten: Promise<void> = Promise.resolve();
  const started = new Promise<boolean>((resolve) => {
    child!.once('spawn', () => resolve(true));
    child!.once('error', () => resolve(false));
  });

  const finished = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child!.once('error', (error) => resolve({ code: null, signal: null, error }));
    child!.once('exit', (code, signal) => resolve({ code, signal }));
  });

  if (await started) {
    const pid = child.pid!;
    stateWritten = (async () => {
      const state: SupervisorState = {
        version: 1,
        taskId: launch.taskId,
        supervisor: await selfIdentity(process.pid),
        task: await selfIdentity(pid),
        startedAt,
        ...(launch.cgroup ? { cgroup: launch.cgroup } : {}),
        ...(launch.stopCommand ? { stopCommand: launch.stopCommand } : {}),
        graceMs: launch.graceMs,
      };
      await writeJsonAtomic(paths.state, state);
    })();
    if (launch.timeoutMs !== undefined) timeoutTimer = setTimeout(() => void terminate('timeout'), launch.timeoutMs);
    // a cancel that arrived before we were listening
    if (existsSync(paths.cancel)) void terminate('cancelled');
  }

  const { code, signal, error } = await finished;
  exited = true;
  if (timeoutTimer) clearTimeout(timeoutTimer);
  if (killTimer) clearTimeout(killTimer);
  await stateWritten.catch((e) => console.error(`cannot write state: ${(e as Error).message}`));

  if (error) {
    if (launch.cgroup) await removeCgroup(launch.cgroup);
    await writeExit(launch, startedAt, { exitCode: null, reason: 'start-failed', message: `cannot start ${launch.argv[0]}: ${error.message}` });
    process.exit(0);
  }

  // The task is its process group: whatever it left behind goes with it.
  if (child.pid) killGroup(child.pid, 'SIGKILL');
  let oom = false;
  if (launch.cgroup) {
    oom = (await oomKills(launch.cgroup)) > 0;
    if (!(await removeCgroup(launch.cgroup))) console.error(`could not remove cgroup ${launch.cgroup}`);
  }

  let reason: TaskExitReason = 'exited';
  let message: string | undefined;
  if (existsSync(paths.joinFailed)) {
    reason = 'start-failed';
    message = `could not move the task into its cgroup ${launch.cgroup}`;
  } else if (terminating) {
    ({ reason, message } = terminating);
  } else if (oom && (signal !== null || code !== 0)) {
    reason = 'oom';
    message = 'killed by the OOM killer: the task exceeded its memory limit';
  } else if (code !== null && launch.startFailedExitCodes?.includes(code)) {
    reason = 'start-failed';
    const last = await lastLine(paths.stderr);
    message = `${launch.argv[0]} exited ${code}: the task could not be started${last ? `: ${last}` : ' (see its stderr)'}`;
  }
  await writeExit(launch, startedAt, {
    exitCode: reason === 'start-failed' ? null : code, // it never ran: the code is the launcher's, kept in the message
    ...(signal ? { signal } : {}),
    reason,
    ...(message ? { message } : {}),
  });
  process.exit(0);
}

main().catch(async (err) => {
  console.error(`supervisor failed: ${(err as Error)?.stack ?? err}`);
  process.exit(1);
});
