/**
 * Heartbeat routes, the hottest of the API (logged at warn only):
 *  - `POST /v1/devices/:id/heartbeats`: the stream agents use (docs/adr/011-heartbeat-streams.md),
 *    an NDJSON request body of heartbeats answered line by line; the logic is
 *    src/cluster/heartbeat-stream.ts, this is its fastify glue;
 *  - `POST /v1/devices/:id/heartbeat`: one heartbeat per request, for simple clients and as the
 *    agents' fallback when a stream cannot be opened.
 */
import type { FastifyInstance } from 'fastify';
import { HeartbeatStream } from '../../cluster/heartbeat-stream.js';
import { NexusError } from '../../errors/catalogue.js';
import { Heartbeat, HeartbeatReply } from '../../resources/device.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { IdParams } from './devices.js';

export const NDJSON = 'application/x-ndjson';

export function heartbeatRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // The stream's body is read as it arrives, by the handler: the parser hands it over untouched.
  app.addContentTypeParser(NDJSON, (_req, payload, done) => done(null, payload));
  app.addHook('preClose', (done) => {
    ctx.heartbeatStreams.closeAll(new NexusError('NEXUS_E_NOT_READY', { detail: 'the server is shutting down' }));
    done();
  });

  app.post<{ Params: IdParams; Body: Heartbeat }>('/v1/devices/:id/heartbeat', {
    logLevel: 'warn',
    schema: { tags: ['devices'], summary: 'one heartbeat (agents use the stream)', params: IdParams, body: Heartbeat, response: { 200: HeartbeatReply } },
  }, async (req) => ctx.devices.heartbeat(principalOf(req), req.params.id, req.body));

  app.post<{ Params: IdParams }>('/v1/devices/:id/heartbeats', {
    logLevel: 'warn',
    schema: {
      tags: ['devices'],
      summary: 'heartbeat stream',
      description: `Body: ${NDJSON}, one Heartbeat object per line, written every announced interval for as long as the agent runs. ` +
        'Answer: 200 and one line per line received, in order: {"intervalMs":N} or {"error":{code,message,field}}. ' +
        'The server ends the stream with an error line when the credential is revoked, after 6 silent intervals (NEXUS_E_STREAM_IDLE), or when it shuts down.',
      params: IdParams,
    },
  }, async (req, reply) => {
    const by = principalOf(req);
    const id = req.params.id;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== NDJSON) throw new NexusError('NEXUS_E_UNSUPPORTED_MEDIA', { detail: type || 'none', expected: NDJSON });
    await ctx.devices.authorizeHeartbeat(by, id);
    const bearer = /^Bearer\s+(\S+)/i.exec(req.headers.authorization ?? '')![1]!;
    const raw = req.raw;
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': `${NDJSON}; charset=utf-8`, 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'close' });
    res.flushHeaders();
    const streams = ctx.heartbeatStreams;
    const stream = new HeartbeatStream({
      deviceId: id,
      sink: {
        write: (line) => res.write(line),
        get unread() {
          return res.writableLength;
        },
        end: () => {
          if (!res.writableEnded) res.end();
        },
      },
      beat: (hb) => ctx.devices.beat(id, hb),
      reverify: () => {
        if (ctx.tokens.verifiedPrincipal(bearer)) return;
        return ctx.tokens.verify(bearer).then(() => undefined);
      },
    });
    streams.add(stream);
    const gone = () => {
      streams.delete(stream);
      stream.close();
    };
    raw.on('data', (chunk: Buffer) => stream.push(chunk));
    // The agent closed its side: the answers end too.
    raw.once('end', gone);
    raw.once('error', gone);
    res.once('close', gone);
  });
}
