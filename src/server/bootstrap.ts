/**
 * First start of a cluster: the `default` tenant and the admin token. The admin token's secret is
 * written to DATA_DIR/admin-token (mode 0600) and never stored anywhere else.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keys } from '../store/keys.js';
import type { StateStore } from '../store/types.js';
import { DEFAULT_TENANT, type TenantService } from '../tenancy/tenants.js';
import { SYSTEM, type TokenService } from '../tenancy/tokens.js';

export interface ClusterInfo {
  id: string;
  createdAt: string;
}

export interface BootstrapResult {
  cluster: ClusterInfo;
  adminTokenPath: string;
  /** Set only when this start created the admin token (it is printed once). */
  newAdminToken?: string;
}

export async function bootstrap(store: StateStore, tenants: TenantService, tokens: TokenService, dataDir: string, now: number): Promise<BootstrapResult> {
  const created: ClusterInfo = { id: randomUUID(), createdAt: new Date(now).toISOString() };
  const r = await store.txn({
    compare: [{ key: keys.cluster(), target: 'version', op: '=', value: 0 }],
    success: [{ type: 'put', key: keys.cluster(), value: JSON.stringify(created) }],
    failure: [{ type: 'get', key: keys.cluster() }],
  });
  const cluster = r.succeeded ? created : (JSON.parse((r.results[0] as { kv: { value: string } }).kv.value) as ClusterInfo);
  await tenants.ensureDefault();
  const adminTokenPath = join(dataDir, 'admin-token');
  if (existsSync(adminTokenPath) && readFileSync(adminTokenPath, 'utf8').trim() !== '') return { cluster, adminTokenPath };
  const { token } = await tokens.create(SYSTEM, { role: 'admin', tenant: DEFAULT_TENANT, name: 'bootstrap admin' });
  writeFileSync(adminTokenPath, token + '\n', { mode: 0o600 });
  return { cluster, adminTokenPath, newAdminToken: token };
}
