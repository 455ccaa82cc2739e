/**
 * Devices: joining (a join token buys a device id and a credential bound to it), registration and
 * heartbeats by agents, operator changes (drain, maintenance, labels, tier, revoke), reads with the
 * live heartbeat data laid over the stored document. Health itself is the health controller's.
 */
import { randomUUID } from 'node:crypto';
import { NexusError } from '../errors/catalogue.js';
import type { Device, DeviceJoin, DeviceJoined, DevicePatch, DeviceRegister, Heartbeat, HeartbeatReply } from '../resources/device.js';
import { createJson, getJson, listJson, updateJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';
import { authorize, type Principal } from '../tenancy/roles.js';
import type { TokenService } from '../tenancy/tokens.js';
import { deviceState, healthOf } from './health.js';
import type { HeartbeatTable } from './heartbeats.js';

/** An agent token acts for its own device only; an unbound agent token (a join token) only joins. */
function authorizeAgentFor(by: Principal, id: string, action: string): void {
  if (by.role !== 'agent') return;
  if (by.deviceId !== id) {
    throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.deviceId ? `agent of device ${by.deviceId}` : 'agent (join token)', action: `${action} device ${id}` });
  }
}

export class DeviceService {
  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly tokens: TokenService,
    private readonly heartbeats: HeartbeatTable,
  ) {}

  /**
   * A new device joins: the server picks its id and mints its credential (an agent token bound to
   * that id). `by` is the join token's principal; a device credential cannot join another device.
   */
  async join(by: Principal, req: DeviceJoin): Promise<DeviceJoined> {
    authorize(by, 'devices:register');
    if (by.deviceId) throw new NexusError('NEXUS_E_FORBIDDEN', { role: `agent of device ${by.deviceId}`, action: 'join another device (use a join token)' });
    const id = `dev-${randomUUID()}`;
    const cred = await this.tokens.createDeviceCredential(by, id, `device ${req.name}`);
    const now = new Date(this.clock()).toISOString();
    const device: Device = {
      id,
      name: req.name,
      state: 'ready',
      health: 'ready',
      healthChangedAt: now,
      tier: req.tier ?? 'local',
      labels: req.labels ?? {},
      capabilities: req.capabilities,
      warnings: req.warnings ?? [],
      ...(req.agentVersion ? { agentVersion: req.agentVersion } : {}),
      registeredAt: now,
      lastHeartbeatAt: now,
      credentialTokenId: cred.item.id,
    };
    try {
      await createJson(this.store, keys.device(id), device, { kind: 'device', id });
    } catch (err) {
      await this.tokens.revokeUnchecked(cred.item.id).catch(() => {});
      throw err;
    }
    this.heartbeats.record(id);
    return { device, token: cred.token, tokenId: cred.item.id };
  }

  /**
   * Creates or refreshes a device's description (capabilities, name, version). Health and the
   * operator's state and labels are kept: health is the controller's to change.
   */
  async register(by: Principal, req: DeviceRegister): Promise<Device> {
    authorize(by, 'devices:register');
    if (by.role === 'agent' && !by.deviceId) throw new NexusError('NEXUS_E_FORBIDDEN', { role: 'agent (join token)', action: 'register a device directly (join it: POST /v1/join)' });
    authorizeAgentFor(by, req.id, 'register');
    const key = keys.device(req.id);
    const now = new Date(this.clock()).toISOString();
    for (;;) {
      const kv = await this.store.get(key);
      const prev = kv ? (JSON.parse(kv.value) as Device) : undefined;
      if (prev?.revokedAt) throw new NexusError('NEXUS_E_DEVICE_REVOKED', { id: req.id, at: prev.revokedAt });
      const health = prev ? healthOf(prev) : 'ready';
      const device: Device = {
        ...(prev ?? {}),
        id: req.id,
        name: req.name,
        state: deviceState(health, prev?.operatorState),
        health,
        tier: prev?.tier ?? req.tier ?? 'local',
        labels: { ...(req.labels ?? {}), ...(prev?.labels ?? {}) },
        capabilities: req.capabilities,
        warnings: req.warnings ?? [],
        ...(req.agentVersion ? { agentVersion: req.agentVersion } : {}),
        registeredAt: prev?.registeredAt ?? now,
        healthChangedAt: prev?.healthChangedAt ?? now,
        lastHeartbeatAt: now,
      };
      const r = await this.store.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 }],
        success: [{ type: 'put', key, value: JSON.stringify(device) }],
      });
      if (r.succeeded) {
        this.heartbeats.record(req.id);
        return this.live(device);
      }
    }
  }

  /**
   * A heartbeat: one in-memory update, no store write (docs/adr/005-device-health.md). A bound
   * credential was checked against its device id by auth already; other callers need the device.
   */
  async heartbeat(by: Principal, id: string, hb: Heartbeat): Promise<HeartbeatReply> {
    await this.authorizeHeartbeat(by, id);
    return { intervalMs: this.beat(id, hb) };
  }

  /** May `by` heartbeat for device `id`? A heartbeat stream asks once, when it opens. */
  async authorizeHeartbeat(by: Principal, id: string): Promise<void> {
    authorize(by, 'devices:register');
    authorizeAgentFor(by, id, 'heartbeat for');
    if (by.deviceId !== id && !(await this.store.get(keys.device(id)))) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'device', id });
  }

  /** Records a heartbeat the caller was authorized for; returns the interval to announce (ms). */
  beat(id: string, hb: Heartbeat): number {
    this.heartbeats.record(id, hb.utilization);
    return this.heartbeats.intervalMs();
  }

  /** How long a heartbeat stream may stay silent before the server closes it (ms). */
  streamIdleMs(): number {
    return Math.max(15_000, 6 * this.heartbeats.intervalMs());
  }

  /** Operator changes: drain / maintenance / back to normal, labels (null removes), tier, profile. */
  async patch(by: Principal, id: string, patch: DevicePatch): Promise<Device> {
    authorize(by, 'devices:write');
    const updated = await updateJson<Device>(this.store, keys.device(id), (d) => {
      const next: Device = { ...d };
      if (patch.operatorState !== undefined) {
        if (patch.operatorState === 'none') delete next.operatorState;
        else next.operatorState = patch.operatorState;
      }
      if (patch.labels) {
        const labels = { ...d.labels };
        for (const [k, v] of Object.entries(patch.labels)) {
          if (v === null) delete labels[k];
          else labels[k] = v;
        }
        next.labels = labels;
      }
      if (patch.tier) next.tier = patch.tier;
      if (patch.profile === null) delete (next as { profile?: string }).profile;
      else if (patch.profile !== undefined) (next as { profile?: string }).profile = patch.profile;
      next.state = deviceState(healthOf(d), next.operatorState);
      return JSON.stringify(next) === JSON.stringify(d) ? undefined : next;
    }, { kind: 'device', id });
    return this.live(updated);
  }

  /** Revokes a device: its credential stops working at once (NEXUS_E_DEVICE_REVOKED). */
  async revoke(by: Principal, id: string): Promise<Device> {
    authorize(by, 'devices:write');
    const at = new Date(this.clock()).toISOString();
    const updated = await updateJson<Device>(this.store, keys.device(id), (d) => (d.revokedAt ? undefined : { ...d, revokedAt: at }), { kind: 'device', id });
    if (updated.credentialTokenId) await this.tokens.revokeUnchecked(updated.credentialTokenId).catch(() => {});
    this.heartbeats.forget(id);
    return this.live(updated);
  }

  async list(by: Principal): Promise<Device[]> {
    authorize(by, 'devices:read');
    return (await listJson<Device>(this.store, keys.devices())).map((d) => this.live(d));
  }

  async get(by: Principal, id: string): Promise<Device> {
    authorize(by, 'devices:read');
    const d = await getJson<Device>(this.store, keys.device(id));
    if (!d) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'device', id });
    return this.live(d);
  }

  /** The stored document with the last heartbeat this server knows of laid over it. */
  private live(d: Device): Device {
    const seen = this.heartbeats.get(d.id);
    const health = healthOf(d);
    const out: Device = { ...d, health };
    if (!seen) return out;
    const at = new Date(seen.seenAt).toISOString();
    if (!out.lastHeartbeatAt || at > out.lastHeartbeatAt) out.lastHeartbeatAt = at;
    if (seen.utilization) out.utilization = seen.utilization;
    return out;
  }
}
