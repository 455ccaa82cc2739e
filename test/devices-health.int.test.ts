// Device health with real processes: heartbeats, SIGKILL detection, recovery, server restarts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Device } from '../src/resources/device.js';
import { runCli, stopChild } from '../src/testing/cli.js';
import { createJoinToken, startAgentProcess, startServerProcess, waitFor, type AgentProcess, type ServerProcess } from '../src/testing/cluster.js';
import { startEtcd, type RunningEtcd } from '../src/testing/etcd.js';

describe('device health', () => {
  let dir: string;
  let server: ServerProcess;
  let a: AgentProcess;
  let b: AgentProcess;

  const device = (id: string): Promise<Device> => server.client.devices.get(id);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-health-'));
    server = await startServerProcess(join(dir, 'server'), 0, [], dir);
    const { token } = await createJoinToken(server);
    [a, b] = await Promise.all([
      startAgentProcess(join(dir, 'agent-a'), dir, { url: server.url, token, name: 'alpha' }),
      startAgentProcess(join(dir, 'agent-b'), dir, { url: server.url, token, name: 'beta' }),
    ]);
  });

  after(async () => {
    for (const p of [a, b]) if (p) await stopChild(p.child);
    if (server) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('joined devices are ready with live utilization; `nexus devices` shows state, tier, CPU/RAM/GPU and utilization', async () => {
    for (const p of [a, b]) {
      const d = await waitFor(`utilization of ${p.deviceId}`, async () => {
        const d = await device(p.deviceId);
        return d.utilization ? d : undefined;
      });
      assert.equal(d.state, 'ready');
      assert.ok(d.utilization!.cpuPct >= 0 && d.utilization!.cpuPct <= 100);
      assert.ok(d.utilization!.memoryUsedBytes > 0);
    }
    const table = await runCli(['devices'], server.env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /NAME\s+STATE\s+TIER\s+OS\/ARCH\s+CPU\s+MEMORY\s+GPU\s+UTILIZATION\s+ID/);
    assert.match(table.stdout, /alpha\s+ready\s+local\s+\S+\s+\d+\s+[\d.]+ \w+\s+\S+\s+cpu \d+% mem \d+%/);
  });

  it('drain, maintenance and labels through `nexus device`; heartbeats do not undo them', async () => {
    const drained = await runCli(['device', 'drain', 'alpha', '--json'], server.env);
    assert.equal(drained.code, 0, drained.stderr);
    assert.equal((JSON.parse(drained.stdout) as Device).state, 'draining');
    // Two heartbeat intervals later it is still draining (and healthy).
    const since = (await device(a.deviceId)).lastHeartbeatAt!;
    await waitFor('two more heartbeats', async () => (Date.parse((await device(a.deviceId)).lastHeartbeatAt!) - Date.parse(since) >= 2000 ? true : undefined), 10_000, 100);
    const d = await device(a.deviceId);
    assert.deepEqual([d.state, d.health, d.operatorState], ['draining', 'ready', 'draining']);
    assert.equal(JSON.parse((await runCli(['device', 'maintenance', a.deviceId, '--json'], server.env)).stdout).state, 'maintenance');
    assert.equal(JSON.parse((await runCli(['device', 'maintenance', a.deviceId, '--off', '--json'], server.env)).stdout).state, 'ready');
    assert.equal((await runCli(['device', 'label', 'alpha', 'zone=lab', 'gpu=none'], server.env)).code, 0);
    assert.equal((await runCli(['device', 'label', 'alpha', 'gpu-'], server.env)).code, 0);
    const shown = await runCli(['device', 'show', 'alpha', '--json'], server.env);
    assert.deepEqual((JSON.parse(shown.stdout) as Device).labels, { zone: 'lab' });
    const text = await runCli(['device', 'show', a.deviceId], server.env);
    assert.match(text.stdout, /state\s+ready/);
    assert.match(text.stdout, /utilization\s+cpu \d+%/);
  });

  it('a SIGKILLed agent is down within 5 s; restarted, it is ready again without operator action', async () => {
    const killedAt = performance.now();
    a.child.kill('SIGKILL');
    let unreachableMs: number | undefined;
    const downMs = await waitFor('alpha to be down', async () => {
      const state = (await device(a.deviceId)).state;
      const ms = performance.now() - killedAt;
      if (state === 'unreachable') unreachableMs ??= ms;
      return state === 'down' ? ms : undefined;
    }, 8000, 50);
    console.log(`SIGKILL → unreachable after ${unreachableMs?.toFixed(0) ?? '?'} ms, down after ${downMs.toFixed(0)} ms`);
    assert.ok(unreachableMs !== undefined, 'it went through unreachable');
    assert.ok(downMs < 5000, `down after ${downMs.toFixed(0)} ms (limit 5000)`);
    assert.equal((await device(b.deviceId)).state, 'ready', 'the other device is unaffected');

    const restartedAt = performance.now();
    a = await startAgentProcess(join(dir, 'agent-a'), dir);
    const readyMs = await waitFor('alpha to be ready again', async () => ((await device(a.deviceId)).state === 'ready' ? performance.now() - restartedAt : undefined), 10_000, 50);
    console.log(`restarted agent ready again ${readyMs.toFixed(0)} ms after its start`);
  });

  it('a server restart does not mark healthy agents down', async () => {
    const port = server.port;
    const stoppedAt = Date.now();
    await server.stop();
    // Stay down longer than the down threshold (4 s): a server that trusted heartbeat times from
    // before its restart would mark every device down at once.
    await new Promise((r) => setTimeout(r, Math.max(0, 4500 - (Date.now() - stoppedAt))));
    const restartedAt = Date.now();
    server = await startServerProcess(join(dir, 'server'), port, ['--restart-grace-ms', '3000'], dir);
    // Watch every device for the grace plus the down threshold and a margin: none may leave ready.
    const bad: string[] = [];
    const until = Date.now() + 3000 + 4000 + 1000;
    while (Date.now() < until) {
      for (const d of (await server.client.devices.list()).items) {
        if (d.revokedAt) continue;
        if (d.state !== 'ready') bad.push(`${d.name}: ${d.state}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(bad, []);
    for (const p of [a, b]) {
      const d = await device(p.deviceId);
      assert.ok(Date.parse(d.lastHeartbeatAt!) > restartedAt, `${d.name} heartbeats reach the restarted server`);
    }
  });
});

describe('device health with two servers on etcd', () => {
  let dir: string;
  let etcd: RunningEtcd;
  let s1: ServerProcess;
  let s2: ServerProcess;
  let agent: AgentProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nexus-health-ha-'));
    etcd = await startEtcd();
    const args = ['--store', 'etcd', '--etcd', etcd.endpoint, '--restart-grace-ms', '2000'];
    s1 = await startServerProcess(join(dir, 's1'), 0, args, dir);
    s2 = await startServerProcess(join(dir, 's2'), 0, args, dir);
  });

  after(async () => {
    if (agent) await stopChild(agent.child);
    for (const s of [s1, s2]) if (s) await s.stop();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('servers share one CA; heartbeats sent to a follower reach the leader; a leader crash marks nobody down', async () => {
    assert.equal(s2.pin, s1.pin, 'the second server uses the cluster CA from the store');
    assert.match((await s1.client.ready()).detail, /running \(leader\)/);
    const { token } = await createJoinToken(s1);
    agent = await startAgentProcess(join(dir, 'agent'), dir, { url: s2.url, token, name: 'gamma' });
    // The agent only talks to s2; s1 (the leader) learns of its heartbeats through the relay.
    const d = await waitFor('relayed utilization on the leader', async () => {
      const d = await s1.client.devices.get(agent.deviceId);
      return d.utilization ? d : undefined;
    });
    assert.equal(d.state, 'ready');
    // Kill the leader: s2 takes over after the leader lease (5 s) and gives agents a grace.
    s1.child.kill('SIGKILL');
    const bad: string[] = [];
    const until = Date.now() + 5000 + 2000 + 4000 + 1000;
    while (Date.now() < until) {
      const state = (await s2.client.devices.get(agent.deviceId)).state;
      if (state !== 'ready') bad.push(state);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(bad, []);
    assert.match((await s2.client.ready()).detail, /running \(leader\)/, 's2 leads now');
    // And s2's controller works: the agent killed is down within the thresholds.
    agent.child.kill('SIGKILL');
    await waitFor('gamma down under the new leader', async () => ((await s2.client.devices.get(agent.deviceId)).state === 'down' ? true : undefined), 8000, 100);
  });
});
