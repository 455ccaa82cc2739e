/**
 * The public surface of the NEXUS package: the typed client (SDK), the store interface and
 * engines, and the error catalogue. Apps import from here, never from internal paths.
 */
export { NexusClient, type List } from './client/client.js';
export { ApiError, type TransportOptions } from './client/transport.js';
export { ERRORS, NexusError, isNexusError, type ErrorCode } from './errors/catalogue.js';
export type {
  StateStore, KeyValue, RangeOptions, RangeResult, PutOptions, PutResult, DeleteResult, Compare, TxnOp, TxnRequest,
  TxnResult, Watch, WatchEvent, WatchOptions, LeaseGrant,
} from './store/types.js';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite/engine.js';
export { EtcdStore } from './store/etcd/engine.js';
export type { Device, DeviceState, Tier } from './resources/device.js';
export type { Tenant } from './resources/tenant.js';
export type { Token, Role } from './resources/token.js';
