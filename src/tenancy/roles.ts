/**
 * Roles and what each may do. Deny by default: an action not granted here is refused.
 * Only `admin` acts across tenants; every other role is confined to its own tenant.
 */
import { NexusError } from '../errors/catalogue.js';
import type { Role } from '../resources/token.js';

export type Action =
  | 'tenants:read' | 'tenants:write'
  | 'tokens:read' | 'tokens:write'
  | 'devices:read' | 'devices:write' | 'devices:register'
  | 'jobs:read' | 'jobs:write';

const READ: Action[] = ['tenants:read', 'tokens:read', 'devices:read', 'jobs:read'];

export const GRANTS: Readonly<Record<Role, ReadonlySet<Action>>> = {
  admin: new Set<Action>([...READ, 'tenants:write', 'tokens:write', 'devices:write', 'devices:register', 'jobs:write']),
  'tenant-admin': new Set<Action>([...READ, 'tokens:write', 'jobs:write']),
  member: new Set<Action>([...READ, 'tokens:write', 'jobs:write']),
  viewer: new Set<Action>(READ),
  agent: new Set<Action>(['devices:register', 'devices:read', 'jobs:read']),
};

/**
 * Token strength: a token may mint only tokens of a role at most as strong as its own. `agent`
 * tokens join devices to the whole cluster, so only `admin` may mint them.
 */
const STRENGTH: Readonly<Record<Role, number>> = { admin: 4, 'tenant-admin': 3, member: 2, viewer: 1, agent: 5 };

export interface Principal {
  /** Accessor id of the token, or 'bootstrap' for in-process callers. */
  readonly tokenId: string;
  readonly role: Role;
  readonly tenant: string;
  /** For agent tokens bound to one device after joining. */
  readonly deviceId?: string;
}

export function can(p: Principal, action: Action): boolean {
  return GRANTS[p.role].has(action);
}

/** Throws unless `p` may do `action` (inside `tenant`, when the resource has one). */
export function authorize(p: Principal, action: Action, tenant?: string): void {
  if (!can(p, action)) throw new NexusError('NEXUS_E_FORBIDDEN', { role: p.role, action });
  if (tenant !== undefined && p.role !== 'admin' && tenant !== p.tenant) {
    throw new NexusError('NEXUS_E_TENANT_SCOPE', { tenant: p.tenant, wanted: tenant });
  }
}

/** Throws unless `p` may mint a token of `role` in `tenant`. */
export function authorizeMint(p: Principal, role: Role, tenant: string): void {
  authorize(p, 'tokens:write', tenant);
  const allowed = p.role === 'admin' || (role !== 'agent' && STRENGTH[role] <= STRENGTH[p.role]);
  if (!allowed) throw new NexusError('NEXUS_E_ROLE_ESCALATION', { role: p.role, wanted: role }, { field: 'role' });
}
