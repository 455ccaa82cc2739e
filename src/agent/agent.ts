/**
 * `nexus agent`: one per device. With the credential it got when it joined (src/agent/join.ts) it
 * registers what the device can do, then sends a heartbeat with live utilization every interval
 * the server asks for (1 s by default), and re-probes the device now and then.
 * Lifecycle: starting → running → stopping → stopped.
 */
import { hostname } from 'node:os';
import { ApiError } from '../client/transport.js';
import { NexusClient } from '../client/client.js';
import { HeartbeatStreamClient } from '../client/heartbeat-stream.js';
import { isNexusError } from '../errors/catalogue.js';
import type { DeviceCapabilities, Heartbeat, HeartbeatReply, Utilization } from '../resources/device.js';
import { VERSION } from '../version.js';
import { measureAndReport } from './netprobe.js';
import { startTaskRunner, type TaskRunner } from './runner.js';

export interface ProbeResult {
  capabilities: DeviceCapabilities;
  warnings: { probe: string; message: string }[];
}

export interface AgentOptions {
  addr: string;
  /** The device credential (an agent token bound to `deviceId`). */
  token: string;
  deviceId: string;
  /** PEM of the cluster CA. */
  ca?: string;
  /** Device name. @default the host name */
  name?: string;
  /** How the device's capabilities are found. */
  probe: () => Promise<ProbeResult>;
  /** Live utilization for each heartbeat. @default none */
  sample?: () => Utilization;
  /** Heartbeat interval until the server names one, in ms. @default 1000 */
  heartbeatMs?: number;
  /** How often the device is probed again and re-registered, in ms. @default 300000 */
  reprobeMs?: number;
  /** A heartbeat or registration failed (the agent keeps trying). */
  onError?: (err: unknown) => void;
  /** Heartbeats work again after failures. */
  onRecovered?: () => void;
  /** The server refused this device for good (revoked, token unknown): the agent has stopped. */
  onFatal?: (err: unknown) => void;
  /**
   * Run the tasks the scheduler assigns to this device, with their work dirs under
   * `<dataDir>/tasks/` (src/agent/runner.ts). Absent: the agent only reports the device.
   */
  tasks?: { dataDir: string };
  /**
   * Heartbeat over one long stream (docs/adr/011-heartbeat-streams.md) rather than a request per
   * beat. The agent falls back to requests by itself when the server has no streams. @default true
   */
  heartbeatStream?: boolean;
  /** Measure RTT to the server now and then and report it for the topology matrix. @default 60000 (0 = never) */
  topologyMs?: number;
}

export type AgentState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface RunningAgent {
  readonly deviceId: string;
  readonly state: AgentState;
  stop(): Promise<void>;
}

/**
 * How late a heartbeat's answer on the stream may be before the stream counts as broken: a server
 * that is merely busy is not dropped (reconnecting would cost it a handshake more).
 */
const STREAM_ANSWER_MS = 15_000;
/** Every this many heartbeats on a stream asks for an answer (the rest go unanswered: ADR 011). */
const ACK_EVERY = 5;

/** Errors no retry can fix: the credential is gone or never was. */
function isFatal(err: unknown): boolean {
  const code = err instanceof ApiError || isNexusError(err) ? err.code : undefined;
  return code === 'NEXUS_E_DEVICE_REVOKED' || code === 'NEXUS_E_BAD_TOKEN' || code === 'NEXUS_E_FORBIDDEN' || code === 'NEXUS_E_UNAUTHENTICATED';
}

function codeOf(err: unknown): string | undefined {
  return err instanceof ApiError || isNexusError(err) ? err.code : undefined;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  let state: AgentState = 'starting';
  const { deviceId } = options;
  let intervalMs = options.heartbeatMs ?? 1000;
  let timer: NodeJS.Timeout | undefined;
  let reprobeTimer: NodeJS.Timeout | undefined;
  let failing = false;
  let mustRegister = false;

  const transport = { addr: options.addr, token: options.token, timeoutMs: 5000, ...(options.ca ? { ca: options.ca } : {}) };
  const client = new NexusClient(transport);
  const stream = options.heartbeatStream === false ? undefined : new HeartbeatStreamClient(transport, deviceId);
  /** Requests only from then on (Date.now() ms): the server has no streams. */
  let streamRetryAt = 0;
  let beats = 0;
  const sendHeartbeat = async (hb: Heartbeat): Promise<HeartbeatReply> => {
    if (stream && Date.now() >= streamRetryAt) {
      try {
        return await stream.send({ ...hb, ...(beats++ % ACK_EVERY === 0 ? { ack: true } : {}) }, STREAM_ANSWER_MS);
      } catch (err) {
        // A server without streams (older): requests from now on. A stream that broke or is
        // waiting to be opened again (server restarted, a proxy that drops upgrades): this beat
        // goes as a request; the stream client opens a new stream after its backoff.
        if (codeOf(err) === 'NEXUS_E_ROUTE_NOT_FOUND') streamRetryAt = Infinity;
        else if (codeOf(err) !== 'NEXUS_E_CONNECT') throw err;
      }
    }
    return client.devices.heartbeat(deviceId, hb);
  };

  const register = async () => {
    const { capabilities, warnings } = await options.probe();
    await client.devices.register({ id: deviceId, name: options.name ?? hostname(), capabilities, warnings, agentVersion: VERSION });
  };

  const fatal = (err: unknown) => {
    void stop();
    options.onFatal?.(err);
  };

  // The first registration waits for the server (it may boot after this device) but not for a
  // refusal: a revoked or unknown credential ends the agent.
  for (;;) {
    try {
      await register();
      break;
    } catch (err) {
      if (isFatal(err)) {
        client.close();
        throw err;
      }
      options.onError?.(err);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  const beat = async () => {
    const started = Date.now();
    try {
      if (mustRegister) {
        await register();
        mustRegister = false;
      }
      const reply = await sendHeartbeat(options.sample ? { utilization: options.sample() } : {});
      if (reply.intervalMs > 0) intervalMs = reply.intervalMs;
      if (failing) {
        failing = false;
        options.onRecovered?.();
      }
    } catch (err) {
      if (state !== 'running') return;
      if (isFatal(err)) return fatal(err);
      if (codeOf(err) === 'NEXUS_E_NOT_FOUND') mustRegister = true;
      failing = true;
      options.onError?.(err);
    }
    if (state !== 'running') return;
    // A little early, never late: spread over 85–100 % of the interval so agents do not beat in step.
    const next = intervalMs * (0.85 + 0.15 * Math.random()) - (Date.now() - started);
    timer = setTimeout(() => void beat(), Math.max(0, next));
  };

  state = 'running';
  void beat();
  const runner: TaskRunner | undefined = options.tasks
    ? startTaskRunner({ client, deviceId, dataDir: options.tasks.dataDir, ...(options.onError ? { onError: options.onError } : {}) })
    : undefined;
  let topologyRound = 0;
  const topologyMs = options.topologyMs ?? 60_000;
  const measure = () => {
    // RTT every round, bandwidth now and then (every tenth round, the first included).
    const bandwidthBytes = topologyRound++ % 10 === 0 ? 4 * 1024 * 1024 : 0;
    measureAndReport({ client, deviceId, bandwidthBytes }).catch((err) => options.onError?.(err));
  };
  const topologyTimer = topologyMs > 0 ? setInterval(measure, topologyMs) : undefined;
  topologyTimer?.unref();
  // The first round soon after start, so the matrix is not empty for a minute.
  const firstRound = topologyMs > 0 ? setTimeout(measure, Math.min(topologyMs, 2000)) : undefined;
  firstRound?.unref();
  reprobeTimer = setInterval(() => {
    register().catch((err) => (isFatal(err) ? fatal(err) : options.onError?.(err)));
  }, options.reprobeMs ?? 300_000);
  reprobeTimer.unref();

  async function stop(): Promise<void> {
    if (state === 'stopping' || state === 'stopped') return;
    state = 'stopping';
    clearTimeout(timer);
    clearInterval(reprobeTimer);
    clearInterval(topologyTimer);
    clearTimeout(firstRound);
    await runner?.stop();
    stream?.close();
    client.close();
    state = 'stopped';
  }

  return {
    deviceId,
    get state() {
      return state;
    },
    stop,
  };
}
