/** Prepared statements of the SQLite engine, prepared once per open database. */
import type Database from 'better-sqlite3';

export interface KvRow {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: number;
}

export interface LogRow {
  revision: number;
  sub: number;
  type: 0 | 1;
  key: string;
  value: string;
  create_revision: number;
  version: number;
}

const SQL = {
    getMeta: 'SELECT value FROM meta WHERE name = ?',
    setMeta: 'UPDATE meta SET value = ? WHERE name = ?',
    getKv: 'SELECT * FROM kv WHERE key = ?',
    // (start, end, end, limit): keys in [start, end); end '' means unbounded.
    rangeFrom: "SELECT * FROM kv WHERE key >= ? AND (? = '' OR key < ?) ORDER BY key LIMIT ?",
    rangeAfter: "SELECT * FROM kv WHERE key > ? AND (? = '' OR key < ?) ORDER BY key LIMIT ?",
    upsertKv:
      `INSERT INTO kv (key, value, create_revision, mod_revision, version, lease) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
         version = excluded.version, lease = excluded.lease`,
    deleteKv: 'DELETE FROM kv WHERE key = ?',
    insertLog:
      'INSERT INTO log (revision, sub, type, key, value, create_revision, version) VALUES (?, ?, ?, ?, ?, ?, ?)',
    history:
      "SELECT * FROM log WHERE revision >= ? AND key >= ? AND (? = '' OR key < ?) ORDER BY revision, sub",
    compactLog: 'DELETE FROM log WHERE revision < ?',
    getLease: 'SELECT ttl, expires_at FROM leases WHERE id = ?',
    insertLease: 'INSERT INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)',
    renewLease: 'UPDATE leases SET expires_at = ? WHERE id = ?',
    refreshLeases: 'UPDATE leases SET expires_at = ? + ttl * 1000',
    deleteLease: 'DELETE FROM leases WHERE id = ?',
    expiredLeases: 'SELECT id FROM leases WHERE expires_at <= ? ORDER BY expires_at',
    keysOfLease: 'SELECT * FROM kv WHERE lease = ? ORDER BY key',
} as const;

export type Statements = { readonly [K in keyof typeof SQL]: Database.Statement };

export function prepareStatements(db: Database.Database): Statements {
  const out: Partial<Record<keyof typeof SQL, Database.Statement>> = {};
  for (const [name, sql] of Object.entries(SQL)) out[name as keyof typeof SQL] = db.prepare(sql);
  return out as Statements;
}
