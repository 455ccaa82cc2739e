/**
 * The typed NEXUS client: the one API surface the CLI, the dashboard, tests and ecosystem apps use.
 *
 * @example
 * const nx = new NexusClient({ addr: 'http://127.0.0.1:7070', token: process.env.NEXUS_TOKEN });
 * const { items } = await nx.devices.list();
 */
import type { Device, DeviceRegister } from '../resources/device.js';
import type { Tenant, TenantCreate } from '../resources/tenant.js';
import type { Token, TokenCreate } from '../resources/token.js';
import { Transport, type TransportOptions } from './transport.js';

export interface List<T> {
  items: T[];
  next?: string;
}

export class NexusClient {
  readonly transport: Transport;

  constructor(options: TransportOptions) {
    this.transport = new Transport(options);
  }

  health(): Promise<{ status: string; version: string }> {
    return this.transport.json('GET', '/healthz');
  }

  ready(): Promise<{ status: string; detail: string }> {
    return this.transport.json('GET', '/readyz');
  }

  readonly tenants = {
    list: () => this.transport.json<List<Tenant>>('GET', '/v1/tenants'),
    get: (name: string) => this.transport.json<Tenant>('GET', `/v1/tenants/${encodeURIComponent(name)}`),
    create: (req: TenantCreate) => this.transport.json<Tenant>('POST', '/v1/tenants', req),
    delete: (name: string) => this.transport.json<void>('DELETE', `/v1/tenants/${encodeURIComponent(name)}`),
  };

  readonly tokens = {
    list: (tenant?: string) => this.transport.json<List<Token>>('GET', `/v1/tokens${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ''}`),
    create: (req: TokenCreate) => this.transport.json<{ token: string; item: Token }>('POST', '/v1/tokens', req),
    revoke: (id: string) => this.transport.json<Token>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`),
  };

  readonly devices = {
    list: () => this.transport.json<List<Device>>('GET', '/v1/devices'),
    get: (id: string) => this.transport.json<Device>('GET', `/v1/devices/${encodeURIComponent(id)}`),
    register: (req: DeviceRegister) => this.transport.json<Device>('POST', '/v1/devices', req),
  };

  close(): void {
    this.transport.close();
  }
}
