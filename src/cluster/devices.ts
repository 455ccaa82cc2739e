/** Devices: registration by agents, listing for everyone with devices:read. */
import { NexusError } from '../errors/catalogue.js';
import type { Device, DeviceRegister } from '../resources/device.js';
import { getJson, listJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';
import { authorize, type Principal } from '../tenancy/roles.js';

export class DeviceService {
  constructor(private readonly store: StateStore, private readonly clock: Clock) {}

  /** Creates or refreshes a device; an agent re-registering keeps its labels, tier and state. */
  async register(by: Principal, req: DeviceRegister): Promise<Device> {
    authorize(by, 'devices:register');
    const key = keys.device(req.id);
    const now = new Date(this.clock()).toISOString();
    for (;;) {
      const kv = await this.store.get(key);
      const prev = kv ? (JSON.parse(kv.value) as Device) : undefined;
      const device: Device = {
        id: req.id,
        name: req.name,
        state: prev && (prev.state === 'draining' || prev.state === 'maintenance') ? prev.state : 'ready',
        tier: prev?.tier ?? req.tier ?? 'local',
        labels: { ...(req.labels ?? {}), ...(prev?.labels ?? {}) },
        capabilities: req.capabilities,
        warnings: req.warnings ?? [],
        ...(req.agentVersion ? { agentVersion: req.agentVersion } : {}),
        registeredAt: prev?.registeredAt ?? now,
        lastHeartbeatAt: now,
      };
      const r = await this.store.txn({
        compare: [{ key, target: 'modRevision', op: '=', value: kv?.modRevision ?? 0 }],
        success: [{ type: 'put', key, value: JSON.stringify(device) }],
      });
      if (r.succeeded) return device;
    }
  }

  async list(by: Principal): Promise<Device[]> {
    authorize(by, 'devices:read');
    return listJson<Device>(this.store, keys.devices());
  }

  async get(by: Principal, id: string): Promise<Device> {
    authorize(by, 'devices:read');
    const d = await getJson<Device>(this.store, keys.device(id));
    if (!d) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'device', id });
    return d;
  }
}
