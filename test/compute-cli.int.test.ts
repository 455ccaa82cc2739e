// `nexus run` / `nexus jobs` / `nexus logs` as a user runs them, against a real `nexus dev`
// (server + local agent with its task runner in one process, real sockets, real SQLite file).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { repoRoot, runCli, spawnCli, stopChild } from '../src/testing/cli.js';

describe('nexus run (CLI) against nexus dev', () => {
  let dir: string;
  let child: ChildProcess;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-run-'));
    const started = await spawnCli(['dev', '--data-dir', join(dir, 'data'), '--port', '0'], /API:\s+(http:\/\/127\.0\.0\.1:\d+)[\s\S]*device:/, { NEXUS_LOG_LEVEL: 'warn' });
    child = started.child;
    const token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
    env = { NEXUS_ADDR: started.match[1]!, NEXUS_TOKEN: token, HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg'), XDG_DATA_HOME: join(dir, 'xdg') };
  });

  after(async () => {
    if (child) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('run --wait streams the output and exits with the task\'s exit code', async () => {
    const r = await runCli(['run', '--wait', '--', 'sh', '-c', 'echo hi; exit 3'], env);
    assert.equal(r.stdout, 'hi\n');
    assert.equal(r.code, 3, r.stderr);
    const ok = await runCli(['run', '--wait', '--', 'echo', 'fine'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'fine\n');
  });

  it('run --json returns the job at once; jobs, job show, tasks and logs -f see it', async () => {
    const r = await runCli(['run', '--json', '--count', '2', '--', 'sh', '-c', 'sleep 0.3; echo "shard $NEXUS_SHARD_INDEX"'], env);
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as { id: string; tasks: { id: string }[] };
    assert.equal(job.tasks.length, 2);
    const follow = await runCli(['logs', job.id, '-f'], env);
    assert.equal(follow.code, 0, follow.stderr);
    assert.deepEqual(follow.stdout.trim().split('\n').sort(), ['[0] shard 0', '[1] shard 1']);
    const one = await runCli(['logs', `${job.id}-1`], env);
    assert.equal(one.stdout, 'shard 1\n');
    const show = await runCli(['job', 'show', job.id], env);
    assert.match(show.stdout, /state\s+succeeded/);
    assert.match(show.stdout, /SHARD\s+STATE/);
    const jobs = JSON.parse((await runCli(['jobs', '--json'], env)).stdout) as { items: { id: string; state: string }[] };
    assert.equal(jobs.items.find((j) => j.id === job.id)?.state, 'succeeded');
    const tasks = JSON.parse((await runCli(['tasks', '--job', job.id, '--json'], env)).stdout) as { items: { state: string }[] };
    assert.deepEqual(tasks.items.map((t) => t.state), ['succeeded', 'succeeded']);
  });

  it('runs the word-count example with its aggregate step', async () => {
    const spec = join(repoRoot(), 'examples', 'wordcount', 'job.json');
    const r = await runCli(['run', '--spec', spec, '--wait'], env, 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[aggregate\] 14 the/);
    const id = JSON.parse((await runCli(['jobs', '--json'], env)).stdout).items.at(-1).id as string;
    const result = await runCli(['job', 'result', id], env);
    assert.match(result.stdout, /^14 the$/m);
  });
});
