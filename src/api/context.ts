/** What route handlers get: the services of one server. */
import type { DeviceService } from '../cluster/devices.js';
import type { HeartbeatStreams } from '../cluster/heartbeat-stream.js';
import type { ProfileService } from '../cluster/profiles.js';
import type { TopologyService } from '../cluster/topology.js';
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
  /** Open heartbeat streams (closed on shutdown and when their device is revoked here). */
  heartbeatStreams: HeartbeatStreams;
  profiles: ProfileService;
  topology: TopologyService;
  /** The cluster CA, on a server that serves TLS (GET /v1/join/ca). */
  ca?: { certPem: string; pin: string };
  /** Store open and controllers running. */
  readiness(): Readiness;
  version: string;
}
