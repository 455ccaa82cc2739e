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
  profiles: () => `${ROOT}profiles/`,
  profile: (name: string) => `${ROOT}profiles/${name}`,
  /** Latest network sample per (from, to) pair; `to` is a device id or 'server'. */
  topology: () => `${ROOT}topology/`,
  topologyFrom: (from: string) => `${ROOT}topology/${from}/`,
  topologyPair: (from: string, to: string) => `${ROOT}topology/${from}/${to}`,
  /** The cluster CA (certificate and key), shared by every server of the cluster. */
  ca: () => `${ROOT}ca`,
  /** Heartbeats a server received, relayed to the others in batches (several servers only). */
  heartbeatRelays: () => `${ROOT}heartbeats/`,
  heartbeatRelay: (serverId: string, chunk: number) => `${ROOT}heartbeats/${serverId}/${chunk}`,
} as const;
