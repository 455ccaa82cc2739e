/**
 * Joining. `GET /v1/join/ca` is public: an agent fetches the CA over an unverified connection,
 * checks its pin against the join token, and only then sends the token (`POST /v1/join`) over a
 * connection verified with that CA. See docs/adr/005-device-health.md.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { NexusError } from '../../errors/catalogue.js';
import { DeviceJoin, DeviceJoined } from '../../resources/device.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const CaReply = Type.Object({ ca: Type.String({ description: 'PEM of the cluster CA' }), pin: Type.String({ description: 'SHA-256 of its DER, hex' }) });

export function joinRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/join/ca', { config: { public: true }, schema: { tags: ['join'], security: [], response: { 200: CaReply } } }, async () => {
    if (!ctx.ca) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'cluster CA', id: '(this server serves plain HTTP)' });
    return { ca: ctx.ca.certPem, pin: ctx.ca.pin };
  });

  app.post<{ Body: DeviceJoin }>('/v1/join', { schema: { tags: ['join'], body: DeviceJoin, response: { 201: DeviceJoined } } }, async (req, reply) => {
    const joined = await ctx.devices.join(principalOf(req), req.body);
    return reply.code(201).send(joined);
  });
}
