/**
 * The key layout of everything NEXUS keeps in the state store, in one place. Tenant-scoped
 * resources sit under their tenant so a tenant's data is one prefix.
 */
export const ROOT = '/nexus/';

export const keys = {
  cluster: () => `${ROOT}cluster`,
  leader: () => `${ROOT}leader`,
  tenants: () => `${ROOT}tenants/`,
  tenant: (name: string) => `${ROOT}tenants/${name}`,
  tokens: () => `${ROOT}tokens/`,
  token: (id: string) => `${ROOT}tokens/${id}`,
  devices: () => `${ROOT}devices/`,
  device: (id: string) => `${ROOT}devices/${id}`,
} as const;
