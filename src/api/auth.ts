/** Bearer-token authentication for everything under /v1. Deny by default. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NexusError } from '../errors/catalogue.js';
import type { Principal } from '../tenancy/roles.js';
import type { TokenService } from '../tenancy/tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The principal of an authenticated request (routes under /v1 always have one). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new NexusError('NEXUS_E_UNAUTHENTICATED');
  return req.principal;
}

export function installAuth(app: FastifyInstance, tokens: TokenService): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/') && req.url !== '/v1') return;
    // Routes marked `config: { public: true }` (GET /v1/join/ca) need no token.
    if ((req.routeOptions.config as { public?: boolean } | undefined)?.public) return;
    const header = req.headers.authorization;
    if (!header) throw new NexusError('NEXUS_E_UNAUTHENTICATED');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'the Authorization header must be "Bearer TOKEN"' });
    req.principal = await tokens.verify(m[1]!);
  });
}
