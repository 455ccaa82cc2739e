/**
 * Test helper: a real server (temp SQLite store) running the compute controller, plus devices
 * joined over the API, each with its own heartbeat loop and (optionally) a real task runner with
 * the real exec driver. Used by test/compute*.int.test.ts.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTaskRunner, type TaskRunner, type TaskRunnerOptions } from '../agent/runner.js';
import { createExecDriver } from '../agent/drivers/index.js';
import { NexusClient } from '../client/client.js';
import type { Controller } from '../cluster/controllers.js';
import type { HealthOptions } from '../cluster/health.js';
import { startTestServer, type TestServer } from '../testing/server.js';
import { ComputeController, type ComputeControllerOptions } from './controller.js';
import type { ComputeEvent, JobView, TaskDoc } from './types.js';

export interface DeviceShape {
  name: string;
  cores?: number;
  memoryBytes?: number;
  gpus?: { index: number; vendor: string; name: string; memoryTotalBytes?: number }[];
  labels?: Record<string, string>;
}

export interface TestDevice {
  id: string;
  token: string;
  client: NexusClient;
  dataDir: string;
  runner?: TaskRunner;
  /** Starts a runner (again) for this device. */
  startRunner(extra?: Partial<TaskRunnerOptions>): TaskRunner;
  stopRunner(): Promise<void>;
  /** Stops (false) or resumes (true) this device's heartbeats. */
  heartbeats(on: boolean): void;
}

export interface ComputeCluster {
  ts: TestServer;
  controller: ComputeController;
  admin: NexusClient;
  devices: TestDevice[];
  errors: unknown[];
  addDevice(shape: DeviceShape, opts?: { runner?: boolean }): Promise<TestDevice>;
  /** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
  until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  waitJob(id: string, states: string[], timeoutMs?: number): Promise<JobView>;
  waitTask(id: string, pred: (t: TaskDoc) => boolean, timeoutMs?: number): Promise<TaskDoc>;
  /** The events of a job once `pred` holds for them (the controller writes them just after each change). */
  events(jobId: string, pred: (events: ComputeEvent[]) => boolean): Promise<ComputeEvent[]>;
  close(): Promise<void>;
}

/** A controller slot filled once the server exists (the server starts controllers before it returns). */
class Deferred implements Controller {
  readonly name = 'compute (deferred)';
  signal: AbortSignal | undefined;
  start(signal: AbortSignal): void {
    this.signal = signal;
  }
}

const HB_MS = 200;

export async function startComputeCluster(options: { health?: HealthOptions; controller?: Partial<ComputeControllerOptions> } = {}): Promise<ComputeCluster> {
  const slot = new Deferred();
  const ts = await startTestServer({
    controllers: [slot],
    compute: false,
    health: options.health ?? { heartbeatMs: HB_MS, unreachableAfterMs: 3 * HB_MS, downAfterMs: 5 * HB_MS, restartGraceMs: 2000, sweepMs: 100 },
  });
  const errors: unknown[] = [];
  const controller = new ComputeController({
    store: ts.server.store,
    leadership: ts.server.leadership,
    lostGraceMs: 500,
    resyncMs: 2000,
    scheduler: { intervalMs: 250 },
    onError: (e) => errors.push(e),
    ...options.controller,
  });
  await controller.start(slot.signal!);
  const admin = new NexusClient({ addr: ts.server.url, token: ts.adminToken });
  const devices: TestDevice[] = [];
  const timers: NodeJS.Timeout[] = [];
  const dirs: string[] = [];

  const cluster: ComputeCluster = {
    ts, controller, admin, devices, errors,
    async addDevice(shape, opts = {}) {
      const { token: joinToken } = await admin.tokens.create({ role: 'agent', name: `join ${shape.name}` });
      const joiner = new NexusClient({ addr: ts.server.url, token: joinToken });
      const joined = await joiner.join.join({
        name: shape.name,
        capabilities: {
          os: { platform: process.platform },
          cpu: { arch: process.arch, logicalCores: shape.cores ?? 2 },
          memory: { totalBytes: shape.memoryBytes ?? 4 * 1024 ** 3 },
          gpus: shape.gpus ?? [],
        },
        ...(shape.labels ? { labels: shape.labels } : {}),
      });
      joiner.close();
      const client = new NexusClient({ addr: ts.server.url, token: joined.token });
      const dataDir = mkdtempSync(join(tmpdir(), `nexus-dev-${shape.name}-`));
      dirs.push(dataDir);
      let beating = true;
      const beat = () => {
        if (beating) client.devices.heartbeat(joined.device.id, {}).catch(() => {});
      };
      beat();
      const timer = setInterval(beat, HB_MS);
      timer.unref();
      timers.push(timer);
      const dev: TestDevice = {
        id: joined.device.id,
        token: joined.token,
        client,
        dataDir,
        startRunner(extra = {}) {
          dev.runner = startTaskRunner({
            client, deviceId: joined.device.id, dataDir,
            drivers: { exec: createExecDriver({ graceMs: 1000, cgroup: false }) },
            logBatchMs: 50,
            onError: (e) => errors.push(e),
            ...extra,
          });
          return dev.runner;
        },
        async stopRunner() {
          await dev.runner?.stop();
          dev.runner = undefined;
        },
        heartbeats(on) {
          beating = on;
          if (on) beat();
        },
      };
      if (opts.runner !== false) dev.startRunner();
      devices.push(dev);
      return dev;
    },
    async until(what, fn, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          const v = await fn();
          if (v) return v as never;
        } catch (e) {
          last = e;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    waitJob(id, states, timeoutMs) {
      return cluster.until(`job ${id} in ${states.join('|')}`, async () => {
        const j = await admin.jobs.get(id);
        return states.includes(j.state) ? j : undefined;
      }, timeoutMs);
    },
    waitTask(id, pred, timeoutMs) {
      return cluster.until(`task ${id}`, async () => {
        const t = await admin.tasks.get(id);
        return pred(t) ? t : undefined;
      }, timeoutMs);
    },
    events(jobId, pred) {
      return cluster.until(`events of job ${jobId}`, async () => {
        const { items } = await admin.jobs.events(jobId);
        return pred(items) ? items : undefined;
      });
    },
    async close() {
      // Cancel what still runs and let the runners stop it, then make sure no process is left.
      try {
        for (const j of (await admin.jobs.list()).items) if (!['succeeded', 'failed', 'cancelled'].includes(j.state)) await admin.jobs.cancel(j.id);
        await cluster.until('runners idle', async () => devices.every((d) => !d.runner || d.runner.active === 0), 10_000);
      } catch {
        /* best effort; the sweep below kills leftovers */
      }
      for (const t of timers) clearInterval(t);
      for (const d of devices) await d.stopRunner().catch(() => {});
      const exec = createExecDriver({ graceMs: 500, cgroup: false });
      for (const d of devices) {
        const dir = join(d.dataDir, 'tasks');
        for (const n of existsSync(dir) ? readdirSync(dir) : []) {
          if (n.endsWith('.json')) continue;
          const found = await exec.reattach(n, join(dir, n)).catch(() => undefined);
          if (found?.status === 'running') await found.task.cancel('test cleanup').catch(() => {});
        }
      }
      for (const d of devices) d.client.close();
      admin.close();
      await ts.close();
      await controller.stopped().catch(() => {});
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
  return cluster;
}
