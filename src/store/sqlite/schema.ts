/**
 * The SQLite engine's tables, the way k3s's kine keeps etcd's model in SQL:
 * - `kv`: the current value of every live key with its revisions;
 * - `log`: one row per write (put or delete), keyed by (revision, sub), for watch and history;
 * - `leases`: granted leases with their absolute expiry on the injected clock;
 * - `meta`: the current revision, the compaction point and the lease id sequence.
 */
export const SCHEMA_VERSION = 1;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compact_revision', 0), ('lease_seq', 0), ('schema', ${SCHEMA_VERSION});

CREATE TABLE IF NOT EXISTS kv (
  key             TEXT PRIMARY KEY,
  value           TEXT NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision    INTEGER NOT NULL,
  version         INTEGER NOT NULL,
  lease           INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease <> 0;

CREATE TABLE IF NOT EXISTS log (
  revision        INTEGER NOT NULL,
  sub             INTEGER NOT NULL,
  type            INTEGER NOT NULL, -- 0 put, 1 delete
  key             TEXT NOT NULL,
  value           TEXT NOT NULL,
  create_revision INTEGER NOT NULL,
  version         INTEGER NOT NULL,
  PRIMARY KEY (revision, sub)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS leases (
  id         INTEGER PRIMARY KEY,
  ttl        INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
`;

/** The smallest string greater than every string that starts with `prefix` ('' = no bound). */
export function prefixEnd(prefix: string): string {
  if (prefix === '') return '';
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}
