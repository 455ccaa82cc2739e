/** Test helper: a real server on a temp SQLite store, listening on a free loopback port. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer, type ServerExtensions } from '../server/server.js';

export interface TestServer {
  server: RunningServer;
  dataDir: string;
  adminToken: string;
  close(): Promise<void>;
}

export async function startTestServer(ext: ServerExtensions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-test-'));
  const server = await startServer({
    dataDir, host: '127.0.0.1', port: 0, store: { engine: 'sqlite', path: join(dataDir, 'state.db') }, logLevel: 'silent', tls: false,
  }, ext);
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    server,
    dataDir,
    adminToken,
    async close() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
