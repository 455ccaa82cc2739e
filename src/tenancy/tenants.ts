/** Tenants: the unit of ownership and quota. `default` exists from first start. */
import { NexusError } from '../errors/catalogue.js';
import type { Tenant, TenantCreate } from '../resources/tenant.js';
import { createJson, getJson, listJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';

export const DEFAULT_TENANT = 'default';

export class TenantService {
  constructor(private readonly store: StateStore, private readonly clock: Clock) {}

  async create(req: TenantCreate): Promise<Tenant> {
    const tenant: Tenant = {
      name: req.name,
      ...(req.displayName ? { displayName: req.displayName } : {}),
      quotas: req.quotas ?? {},
      createdAt: new Date(this.clock()).toISOString(),
    };
    await createJson(this.store, keys.tenant(req.name), tenant, { kind: 'tenant', id: req.name });
    return tenant;
  }

  async get(name: string): Promise<Tenant> {
    const t = await getJson<Tenant>(this.store, keys.tenant(name));
    if (!t) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: name });
    return t;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.store.get(keys.tenant(name))) !== undefined;
  }

  list(): Promise<Tenant[]> {
    return listJson<Tenant>(this.store, keys.tenants());
  }

  /** Deletes a tenant and revokes nothing implicitly: a tenant that still has tokens is refused. */
  async delete(name: string, tokensInTenant: number): Promise<void> {
    if (name === DEFAULT_TENANT) throw new NexusError('NEXUS_E_IN_USE', { kind: 'tenant', id: name, detail: 'the default tenant cannot be deleted' });
    if (tokensInTenant > 0) throw new NexusError('NEXUS_E_IN_USE', { kind: 'tenant', id: name, detail: `${tokensInTenant} active token(s) belong to it; revoke them first` });
    const r = await this.store.delete(keys.tenant(name));
    if (r.deleted === 0) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: name });
  }

  /** First start: make sure `default` exists. */
  async ensureDefault(): Promise<void> {
    if (!(await this.exists(DEFAULT_TENANT))) {
      try {
        await this.create({ name: DEFAULT_TENANT, displayName: 'Default tenant' });
      } catch (err) {
        if (!(err instanceof NexusError && err.code === 'NEXUS_E_ALREADY_EXISTS')) throw err;
      }
    }
  }
}
