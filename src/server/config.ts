/** The resolved, frozen configuration of a `nexus server` / `nexus dev` process. */
export type StoreConfig =
  | { engine: 'sqlite'; path: string }
  | { engine: 'etcd'; endpoints: string[]; prefix?: string };

export interface ServerConfig {
  /** Where the server keeps its files (SQLite db, admin token, CA). */
  readonly dataDir: string;
  /** Address to listen on. @default '127.0.0.1' */
  readonly host: string;
  /** Port to listen on; 0 picks a free one. @default 7070 */
  readonly port: number;
  readonly store: StoreConfig;
  /** pino level, or 'silent'. @default 'info' */
  readonly logLevel: string;
  /** Serve TLS with the cluster CA. @default false in `nexus dev` */
  readonly tls: boolean;
}
