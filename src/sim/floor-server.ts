/**
 * The floor for heartbeats: a bare `node:https` server (the same TLS key and certificate as the
 * NEXUS server under test) that reads each request body, parses it as JSON and answers
 * `{"intervalMs":…}`; nothing else. Whatever NEXUS costs per heartbeat above this is the price
 * of fastify, auth, validation and the handler. An upgrade request is a heartbeat stream (docs/adr/011):
 * answered 101 at once, then each line is parsed, and the ones
 * that ask (`"ack":true`) are answered.
 * Run by `startFloorServer()` (floor.ts):
 *
 *   node floor-server.js CERT_PEM_PATH KEY_PEM_PATH [INTERVAL_MS]   → prints "PORT <n>"
 *
 * INTERVAL_MS (default 1000) is the interval it announces, so devices beat at the same rate as
 * they did against the server it stands in for.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import https from 'node:https';

const [certPath, keyPath, intervalArg] = process.argv.slice(2);
if (!certPath || !keyPath) {
  process.stderr.write('usage: floor-server.js CERT KEY\n');
  process.exit(2);
}
const reply = JSON.stringify({ intervalMs: Number(intervalArg ?? 1000) || 1000 });
const ackLine = JSON.stringify({ intervalMs: Number(intervalArg ?? 1000) || 1000, ack: true }) + '\n';

/** A heartbeat stream: the upgrade answered at once, then each line parsed and answered. */
function stream(socket: Duplex, head: Buffer): void {
  socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: nexus-heartbeats/1\r\n\r\n');
  (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  let partial = '';
  const onData = (c: Buffer) => {
    const text = partial + c.toString('utf8');
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) >= 0) {
      // As NEXUS: only a heartbeat that asks is answered.
      if ((JSON.parse(text.slice(start, nl)) as { ack?: boolean }).ack === true) socket.write(ackLine);
      start = nl + 1;
    }
    partial = text.slice(start);
  };
  if (head.length) onData(head);
  socket.on('data', onData);
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
}

const server = https.createServer({ cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(reply) });
      res.end(reply);
    } catch {
      res.writeHead(400, { 'content-length': 0 });
      res.end();
    }
  });
});
server.keepAliveTimeout = 72_000; // fastify's default
server.on('upgrade', (_req: IncomingMessage, socket: Duplex, head: Buffer) => stream(socket, head));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`PORT ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
