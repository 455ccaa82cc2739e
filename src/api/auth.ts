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
  // A callback hook, not an async one: a token verified a moment ago (every heartbeat but the
  // first few) is answered without a promise (TokenService.verifiedPrincipal).
  app.addHook('onRequest', (req, _reply, done) => {
    if (!req.url.startsWith('/v1/') && req.url !== '/v1') return done();
    // Routes marked `config: { public: true }` (GET /v1/join/ca) need no token.
    if ((req.routeOptions.config as { public?: boolean } | undefined)?.public) return done();
    const header = req.headers.authorization;
    if (!header) return done(new NexusError('NEXUS_E_UNAUTHENTICATED'));
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return done(new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'the Authorization header must be "Bearer TOKEN"' }));
    const known = tokens.verifiedPrincipal(m[1]!);
    if (known) {
      req.principal = known;
      return done();
    }
    tokens.verify(m[1]!).then((principal) => {
      req.principal = principal;
      done();
    }, done);
  });
}
