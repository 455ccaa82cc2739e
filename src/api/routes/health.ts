import type { FastifyInstance } from 'fastify';
import { NexusError } from '../../errors/catalogue.js';
import type { ApiContext } from '../context.js';

/** `/healthz`: the process answers. `/readyz`: store open and controllers running. No token. */
export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', version: ctx.version }));
  app.get('/readyz', { schema: { hide: true } }, async () => {
    const r = ctx.readiness();
    if (!r.ready) throw new NexusError('NEXUS_E_NOT_READY', { detail: r.detail });
    return { status: 'ready', detail: r.detail };
  });
}
