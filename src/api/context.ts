/** What route handlers get: the services of one server. */
import type { DeviceService } from '../cluster/devices.js';
import type { StateStore } from '../store/types.js';
import type { TenantService } from '../tenancy/tenants.js';
import type { TokenService } from '../tenancy/tokens.js';

export interface Readiness {
  ready: boolean;
  detail: string;
}

export interface ApiContext {
  store: StateStore;
  tenants: TenantService;
  tokens: TokenService;
  devices: DeviceService;
  /** Store open and controllers running. */
  readiness(): Readiness;
  version: string;
}
