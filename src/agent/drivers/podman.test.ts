import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDriverConformance } from './conformance.js';
import { containerEnv, cpusFlag, envFileContent, PodmanDriver, podmanRunArgs } from './podman.js';
import type { TaskRunSpec } from './types.js';

// An image with a POSIX shell, already present locally (tests never pull).
const IMAGE = process.env.NEXUS_TEST_PODMAN_IMAGE ?? 'docker.io/library/busybox:latest';

const availability = await new PodmanDriver().available();

describe('podman driver', () => {
  const spec: TaskRunSpec = {
    taskId: 'job-1.shard-0',
    command: ['python', '-c', 'print(1)'],
    env: { FOO: 'bar', NEXUS_WORK_DIR: 'spoofed' },
    workDir: '/var/lib/nexus/tasks/job-1.shard-0',
    image: 'ghcr.io/acme/train:1',
    cpuMillis: 1500,
    memoryBytes: 2 * 1024 ** 3,
    gpus: { vendor: 'nvidia', indices: [0, 2] },
    shard: { index: 0, count: 4 },
  };

  it('builds the podman run command line', () => {
    const args = podmanRunArgs(spec, { envFile: '/w/.nexus/container.env' });
    assert.deepEqual(args, [
      'run', '--rm', '--replace', '--name', 'nexus-job-1.shard-0', '--label', 'nexus.task-id=job-1.shard-0', '--init',
      '--workdir', '/nexus/work', '--volume', '/var/lib/nexus/tasks/job-1.shard-0:/nexus/work:Z',
      '--env-file', '/w/.nexus/container.env',
      '--cpus', '1.5', '--memory', '2147483648b', '--memory-swap', '2147483648b',
      '--device', 'nvidia.com/gpu=0', '--device', 'nvidia.com/gpu=2',
      'ghcr.io/acme/train:1', 'python', '-c', 'print(1)',
    ]);
    const amd = podmanRunArgs({ ...spec, gpus: { vendor: 'amd', indices: [1] }, cpuMillis: undefined, memoryBytes: undefined }, { envFile: 'e', init: false });
    assert.ok(!amd.includes('--init') && !amd.includes('--cpus') && !amd.includes('--memory'));
    assert.deepEqual(amd.slice(amd.indexOf('--device'), amd.indexOf('ghcr.io/acme/train:1')), ['--device', '/dev/kfd', '--device', '/dev/dri']);
    assert.equal(cpusFlag(250), '0.25');
  });

  it('gives the container NEXUS_* with container paths; no secrets on the command line', () => {
    const env = containerEnv(spec);
    assert.equal(env.NEXUS_WORK_DIR, '/nexus/work');
    assert.equal(env.NEXUS_RESULT_FILE, '/nexus/work/.nexus/result');
    assert.equal(env.NEXUS_SHARD_COUNT, '4');
    assert.equal(env.FOO, 'bar');
    assert.equal(env.CUDA_VISIBLE_DEVICES, undefined, 'CDI exposes only the assigned GPUs');
    assert.equal(containerEnv({ ...spec, gpus: { vendor: 'amd', indices: [3] } }).ROCR_VISIBLE_DEVICES, '3');
    const { content, multiline } = envFileContent({ A: '1', B: 'two\nlines' });
    assert.equal(content, 'A=1\n');
    assert.deepEqual(multiline, { B: 'two\nlines' });
    assert.ok(!podmanRunArgs(spec, { envFile: 'e' }).some((a) => a.includes('FOO')));
  });

  it('says why it is unavailable, and start() reports start-failed instead of throwing', async () => {
    const d = new PodmanDriver({ podman: 'nexus-no-such-podman' });
    const a = await d.available();
    assert.equal(a.ok, false);
    assert.match(a.reason ?? '', /podman is not installed/);
    assert.equal((await d.limits()).enforced, false);
    const t = await d.start({ ...spec, workDir: '/nonexistent/never-created' });
    const exit = await t.wait();
    assert.equal(exit.reason, 'start-failed');
    assert.match(exit.message ?? '', /podman is not installed/);
    const noImage = await (await new PodmanDriver().start({ ...spec, image: undefined })).wait();
    assert.match(noImage.message ?? '', /needs spec\.image/);
  });
});

runDriverConformance('podman', {
  makeDriver: () => new PodmanDriver({ graceMs: 1000, extraRunArgs: ['--pull=never', '--network=none'] }),
  skip: availability.ok ? false : availability.reason,
  image: IMAGE,
  testTimeoutMs: 60_000,
});

/**
 * A stand-in `podman` (a small node script) that understands exactly the flags this driver emits
 * and runs the "container" as a host process group with the volume's paths mapped back. It does
 * not test podman; it tests NEXUS's side of the contract with it — the command line, env file,
 * `podman stop` on timeout/cancel, exit-code mapping and reattach — where podman is not installed.
 */
const FAKE_PODMAN = `#!${process.execPath}
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const stateDir = path.dirname(__filename);
const args = process.argv.slice(2);
const pidFile = (name) => path.join(stateDir, name + '.pid');
if (args[0] === '--version') { console.log('podman version 0.0.0-nexus-fake'); process.exit(0); }
if (args[0] === 'info') { console.log(JSON.stringify({ host: { cgroupVersion: 'v2', cgroupControllers: ['cpu', 'memory', 'pids'] } })); process.exit(0); }
if (args[0] === 'stop') {
  const name = args[args.length - 1];
  const time = Number(args[args.indexOf('--time') + 1] || 10);
  let pid; try { pid = Number(fs.readFileSync(pidFile(name), 'utf8')); } catch { process.exit(0); }
  try { process.kill(-pid, 'SIGTERM'); } catch {}
  const deadline = Date.now() + time * 1000;
  const tick = () => {
    try { process.kill(-pid, 0); } catch { process.exit(0); }
    if (Date.now() > deadline) { try { process.kill(-pid, 'SIGKILL'); } catch {} process.exit(0); }
    setTimeout(tick, 20);
  };
  tick();
} else if (args[0] === 'run') {
  const withValue = new Set(['--name', '--label', '--workdir', '--volume', '--env-file', '--env', '--cpus', '--memory', '--memory-swap', '--device']);
  const opts = {}; const env = {}; let i = 1;
  for (; i < args.length && args[i].startsWith('--'); i++) {
    const a = args[i];
    if (withValue.has(a)) {
      const v = args[++i];
      if (a === '--env') { const k = v.indexOf('='); env[v.slice(0, k)] = v.slice(k + 1); } else (opts[a] ??= []).push(v);
    }
  }
  const image = args[i]; const cmd = args.slice(i + 1);
  if (!image || !opts['--name'] || !opts['--env-file']) { console.error('Error: fake podman: bad command line'); process.exit(125); }
  const [host, ctr] = opts['--volume'][0].split(':');
  const map = (v) => v.split(ctr).join(host);
  for (const line of fs.readFileSync(opts['--env-file'][0], 'utf8').split('\\n')) {
    const k = line.indexOf('='); if (k > 0) env[line.slice(0, k)] = line.slice(k + 1);
  }
  for (const k of Object.keys(env)) env[k] = map(env[k]);
  env.PATH = process.env.PATH;
  const child = spawn(cmd[0], cmd.slice(1), { cwd: map(opts['--workdir'][0]), env, stdio: 'inherit', detached: true });
  child.on('error', (e) => {
    console.error('Error: crun: executable file \`' + cmd[0] + '\` not found in $PATH: No such file or directory: OCI runtime attempted to invoke a command that was not found');
    process.exit(127);
  });
  child.on('spawn', () => fs.writeFileSync(pidFile(opts['--name'][0]), String(child.pid)));
  process.on('SIGTERM', () => { try { process.kill(-child.pid, 'SIGTERM'); } catch {} });
  child.on('exit', (code, sig) => {
    try { fs.rmSync(pidFile(opts['--name'][0])); } catch {}
    process.exit(code ?? 128 + require('node:os').constants.signals[sig]);
  });
} else { console.error('fake podman: unsupported ' + args[0]); process.exit(125); }
`;

const fakeDir = mkdtempSync(join(tmpdir(), 'nexus-fake-podman-'));
const fakePodman = join(fakeDir, 'podman');
writeFileSync(fakePodman, FAKE_PODMAN);
chmodSync(fakePodman, 0o755);
after(() => rmSync(fakeDir, { recursive: true, force: true }));

runDriverConformance('podman (stand-in podman binary)', {
  makeDriver: () => new PodmanDriver({ podman: fakePodman, graceMs: 1000, extraRunArgs: ['--pull=never'] }),
  image: 'stand-in:latest',
});
