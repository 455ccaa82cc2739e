/**
 * Configuration, resolved in one place with one precedence: flags > environment > config file >
 * defaults. The result is frozen; inner code never sees `undefined` for a defaulted option.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { NexusError } from '../errors/catalogue.js';
import type { ServerConfig, StoreConfig } from '../server/config.js';

/** @default 7070 */
export const DEFAULT_PORT = 7070;
/** @default '127.0.0.1' */
export const DEFAULT_HOST = '127.0.0.1';

/** Default data dir: $NEXUS_HOME, else $XDG_DATA_HOME/nexus, else ~/.local/share/nexus. */
export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, 'nexus');
  return join(homedir(), '.local', 'share', 'nexus');
}

/** The keys a config file may hold (JSON). */
export interface FileConfig {
  addr?: string;
  token?: string;
  ca?: string;
  dataDir?: string;
  host?: string;
  port?: number;
  logLevel?: string;
  store?: { engine?: 'sqlite' | 'etcd'; endpoints?: string[]; prefix?: string };
}

const FILE_KEYS = new Set(['addr', 'token', 'ca', 'dataDir', 'host', 'port', 'logLevel', 'store']);

/** Reads the config file named by --config, else NEXUS_CONFIG, else ~/.config/nexus/config.json if present. */
export function loadConfigFile(flagPath: string | undefined, env: NodeJS.ProcessEnv): FileConfig {
  const explicit = flagPath ?? env.NEXUS_CONFIG;
  const path = explicit ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'nexus', 'config.json');
  if (!existsSync(path)) {
    if (explicit) throw new NexusError('NEXUS_E_CONFIG', { field: 'config', detail: `file ${path} does not exist` });
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'config', detail: `${path} is not valid JSON (${(err as Error).message})` });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'config', detail: `${path} must hold a JSON object` });
  }
  for (const k of Object.keys(parsed)) {
    if (!FILE_KEYS.has(k)) throw new NexusError('NEXUS_E_CONFIG', { field: k, detail: `unknown key in ${path}; known: ${[...FILE_KEYS].join(', ')}` });
  }
  return parsed as FileConfig;
}

function pick<T>(...values: (T | undefined)[]): T | undefined {
  return values.find((v) => v !== undefined && v !== '');
}

function parsePort(value: string | number | undefined, source: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new NexusError('NEXUS_E_CONFIG', { field: 'port', detail: `${source} gave ${JSON.stringify(value)}; use an integer 0-65535` });
  return n;
}

export interface ClientFlags {
  addr?: string;
  token?: string;
  ca?: string;
  config?: string;
}

export interface ClientConfig {
  readonly addr: string;
  readonly token?: string;
  /** PEM contents of the CA file, if one was named. */
  readonly ca?: string;
  readonly caPath?: string;
}

/**
 * Client side (every CLI command that talks to a server). When no token is given anywhere and
 * the address is the local default, the admin token of the default data dir is used, so
 * `nexus dev` followed by `nexus devices` just works on one machine.
 */
export function resolveClientConfig(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const file = loadConfigFile(flags.config, env);
  const addr = pick(flags.addr, env.NEXUS_ADDR, file.addr) ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;
  try {
    const u = new URL(addr);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'addr', detail: `${JSON.stringify(addr)} is not an http(s):// URL` });
  }
  let token = pick(flags.token, env.NEXUS_TOKEN, file.token);
  if (!token) {
    const local = join(pick(env.NEXUS_DATA_DIR, file.dataDir) ?? defaultDataDir(env), 'admin-token');
    if (existsSync(local)) token = readFileSync(local, 'utf8').trim() || undefined;
  }
  const caPath = pick(flags.ca, env.NEXUS_CA, file.ca);
  let ca: string | undefined;
  if (caPath) {
    try {
      ca = readFileSync(caPath, 'utf8');
    } catch (err) {
      throw new NexusError('NEXUS_E_CONFIG', { field: 'ca', detail: `cannot read ${caPath}: ${(err as Error).message}` });
    }
  }
  return Object.freeze({ addr, ...(token ? { token } : {}), ...(ca ? { ca, caPath } : {}) });
}

export interface ServerFlags {
  dataDir?: string;
  host?: string;
  port?: string | number;
  config?: string;
  logLevel?: string;
  store?: string;
  etcd?: string;
}

/** Server side (`nexus dev`, `nexus server`). */
export function resolveServerConfig(flags: ServerFlags, mode: 'dev' | 'server', env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const file = loadConfigFile(flags.config, env);
  const rawDir = pick(flags.dataDir, env.NEXUS_DATA_DIR, file.dataDir) ?? defaultDataDir(env);
  const dataDir = isAbsolute(rawDir) ? rawDir : resolve(rawDir);
  const host = pick(flags.host, env.NEXUS_HOST, file.host) ?? DEFAULT_HOST;
  const port = parsePort(flags.port, '--port') ?? parsePort(env.NEXUS_PORT, 'NEXUS_PORT') ?? parsePort(file.port, 'config file') ?? DEFAULT_PORT;
  const engine = pick(flags.store, env.NEXUS_STORE, file.store?.engine) ?? 'sqlite';
  let store: StoreConfig;
  if (engine === 'sqlite') {
    store = { engine: 'sqlite', path: join(dataDir, 'state.db') };
  } else if (engine === 'etcd') {
    const endpoints = (pick(flags.etcd, env.NEXUS_ETCD_ENDPOINTS)?.split(',') ?? file.store?.endpoints ?? []).map((s) => s.trim()).filter(Boolean);
    if (endpoints.length === 0) throw new NexusError('NEXUS_E_CONFIG', { field: 'etcd', detail: 'the etcd engine needs endpoints (--etcd http://127.0.0.1:2379 or NEXUS_ETCD_ENDPOINTS)' });
    store = { engine: 'etcd', endpoints, ...(file.store?.prefix ? { prefix: file.store.prefix } : {}) };
  } else {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'store', detail: `unknown engine ${JSON.stringify(engine)}; use sqlite or etcd` });
  }
  const logLevel = pick(flags.logLevel, env.NEXUS_LOG_LEVEL, file.logLevel) ?? (mode === 'dev' ? 'warn' : 'info');
  const isLoopback = host === '127.0.0.1' || host === '::1' || host === 'localhost';
  if (mode === 'dev' && !isLoopback) {
    throw new NexusError('NEXUS_E_CONFIG', { field: 'host', detail: `nexus dev serves plain HTTP and listens on loopback only; use nexus server to listen on ${host}` });
  }
  return Object.freeze({ dataDir, host, port, store, logLevel, tls: mode === 'server' });
}
