import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { List, Name } from '../../resources/common.js';
import { Token, TokenCreate, TokenCreated } from '../../resources/token.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const ListQuery = Type.Object({ tenant: Type.Optional(Name) }, { additionalProperties: false });

export function tokenRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: Static<typeof ListQuery> }>('/v1/tokens', { schema: { tags: ['tokens'], querystring: ListQuery, response: { 200: List(Token) } } }, async (req) => {
    return { items: await ctx.tokens.list(principalOf(req), req.query.tenant) };
  });

  app.post<{ Body: TokenCreate }>('/v1/tokens', { schema: { tags: ['tokens'], body: TokenCreate, response: { 201: TokenCreated } } }, async (req, reply) => {
    const created = await ctx.tokens.create(principalOf(req), req.body);
    return reply.code(201).send(created);
  });

  app.delete<{ Params: Static<typeof IdParams> }>('/v1/tokens/:id', { schema: { tags: ['tokens'], params: IdParams, response: { 200: Token } } }, async (req) => {
    return ctx.tokens.revoke(principalOf(req), req.params.id);
  });
}
