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

/**
 * The principal of an `Authorization` header: at once when the bearer was verified a moment ago
 * (TokenService.verifiedPrincipal), else a promise. Throws NEXUS_E_UNAUTHENTICATED / NEXUS_E_BAD_TOKEN.
 */
export function principalFromHeader(tokens: TokenService, header: string | undefined): Principal | Promise<Principal> {
  if (!header) throw new NexusError('NEXUS_E_UNAUTHENTICATED');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'the Authorization header must be "Bearer TOKEN"' });
  return tokens.verifiedPrincipal(m[1]!) ?? tokens.verify(m[1]!);
}

/** The bearer of an `Authorization` header that authenticated already. */
export function bearerOf(header: string | undefined): string {
  return /^Bearer\s+(\S+)/i.exec(header ?? '')?.[1] ?? '';
}

export function installAuth(app: FastifyInstance, tokens: TokenService): void {
  app.decorateRequest('principal', undefined);
  // A callback hook, not an async one: a token verified a moment ago (every heartbeat but the
  // first few) is answered without a promise (TokenService.verifiedPrincipal).
  app.addHook('onRequest', (req, _reply, done) => {
    if (!req.url.startsWith('/v1/') && req.url !== '/v1') return done();
    // Routes marked `config: { public: true }` (GET /v1/join/ca) need no token.
    if ((req.routeOptions.config as { public?: boolean } | undefined)?.public) return done();
    let found: Principal | Promise<Principal>;
    try {
      found = principalFromHeader(tokens, req.headers.authorization);
    } catch (err) {
      return done(err as Error);
    }
    if (!(found instanceof Promise)) {
      req.principal = found;
      return done();
    }
    found.then((principal) => {
      req.principal = principal;
      done();
    }, done);
  });
}
