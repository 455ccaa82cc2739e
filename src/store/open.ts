/** Opens the configured engine. */
import type { StoreConfig } from '../server/config.js';
import type { StateStore } from './types.js';

export async function openStore(config: StoreConfig): Promise<StateStore> {
  if (config.engine === 'sqlite') {
    const { SqliteStore } = await import('./sqlite/engine.js');
    return SqliteStore.open({ path: config.path });
  }
  const { EtcdStore } = await import('./etcd/engine.js');
  return EtcdStore.open({ endpoints: config.endpoints, ...(config.prefix ? { prefix: config.prefix } : {}) });
}
