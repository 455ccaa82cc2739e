/**
 * Heartbeat routes, the hottest of the API:
 *  - `GET /v1/devices/:id/heartbeats` with `Upgrade: nexus-heartbeats/1`: the stream agents use
 *    (docs/adr/011-heartbeat-streams.md). After `101 Switching Protocols` the connection carries
 *    NDJSON both ways, a heartbeat line in, an answer line out; the logic is
 *    src/cluster/heartbeat-stream.ts, this is its HTTP glue. An upgrade is outside fastify's
 *    routing, so it is authenticated and refused here, in the API's one error shape;
 *  - `POST /v1/devices/:id/heartbeat`: one heartbeat per request, for simple clients and as the
 *    agents' fallback where an upgrade cannot pass (a proxy that does not forward it).
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { HeartbeatStream } from '../../cluster/heartbeat-stream.js';
import { NexusError } from '../../errors/catalogue.js';
import { Heartbeat, HeartbeatReply } from '../../resources/device.js';
import { bearerOf, principalFromHeader, principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { IdParams } from './devices.js';

/** The `Upgrade` token of the heartbeat stream. */
export const HEARTBEAT_PROTOCOL = 'nexus-heartbeats/1';
const PATH = /^\/v1\/devices\/([^/?#]{1,128})\/heartbeats(?:\?.*)?$/;

/** Answers an upgrade request with an HTTP error in the API's shape, then closes the connection. */
function refuse(socket: Duplex, err: NexusError): void {
  const body = JSON.stringify(err.toJSON());
  socket.end(`HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export function heartbeatRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Params: IdParams; Body: Heartbeat }>('/v1/devices/:id/heartbeat', {
    logLevel: 'warn',
    schema: { tags: ['devices'], summary: 'one heartbeat (agents use the stream: GET …/heartbeats with Upgrade)', params: IdParams, body: Heartbeat, response: { 200: HeartbeatReply } },
  }, async (req) => ctx.devices.heartbeat(principalOf(req), req.params.id, req.body));

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    upgrade(req, socket, head).catch((err: unknown) => {
      const nerr = err instanceof NexusError ? err : new NexusError('NEXUS_E_INTERNAL', { detail: 'heartbeat stream upgrade' }, { cause: err });
      if (nerr.status >= 500) app.log.error({ err }, 'heartbeat stream upgrade failed');
      if (!socket.destroyed) refuse(socket, nerr);
    });
  });
  app.addHook('preClose', (done) => {
    ctx.heartbeatStreams.closeAll(new NexusError('NEXUS_E_NOT_READY', { detail: 'the server is shutting down' }));
    done();
  });

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = req.url ?? '';
    const m = PATH.exec(url);
    if (!m) throw new NexusError('NEXUS_E_ROUTE_NOT_FOUND', { method: `${req.method} (upgrade)`, url: url.split('?')[0] });
    if (req.method !== 'GET') throw new NexusError('NEXUS_E_METHOD_NOT_ALLOWED', { method: req.method ?? '', url: url.split('?')[0] });
    if ((req.headers.upgrade ?? '').trim().toLowerCase() !== HEARTBEAT_PROTOCOL) {
      throw new NexusError('NEXUS_E_VALIDATION', { field: 'upgrade', detail: `the Upgrade header must be ${HEARTBEAT_PROTOCOL}` });
    }
    if (ctx.heartbeatStreams.isClosed) throw new NexusError('NEXUS_E_NOT_READY', { detail: 'the server is shutting down' });
    const by = await principalFromHeader(ctx.tokens, req.headers.authorization);
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      throw new NexusError('NEXUS_E_VALIDATION', { field: 'params.id', detail: 'it is not a valid URL component' });
    }
    await ctx.devices.authorizeHeartbeat(by, id);
    if (socket.destroyed) return;
    const bearer = bearerOf(req.headers.authorization);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${HEARTBEAT_PROTOCOL}\r\n\r\n`);
    (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const stream = new HeartbeatStream({
      deviceId: id,
      sink: {
        write: (line) => socket.write(line),
        get unread() {
          return socket.writableLength;
        },
        end: () => {
          if (!socket.writableEnded) socket.end();
        },
      },
      beat: (hb) => ctx.devices.beat(id, hb),
      reverify: () => {
        if (ctx.tokens.verifiedPrincipal(bearer)) return;
        return ctx.tokens.verify(bearer).then(() => undefined);
      },
    });
    ctx.heartbeatStreams.add(stream);
    const gone = () => {
      ctx.heartbeatStreams.delete(stream);
      stream.close();
    };
    if (head.length) stream.push(head);
    socket.on('data', (chunk: Buffer) => stream.push(chunk));
    // The agent closed its side: so does the server.
    socket.once('end', gone);
    socket.once('close', gone);
  }
}
