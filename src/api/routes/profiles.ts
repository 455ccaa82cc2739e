import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { List, Name } from '../../resources/common.js';
import { Profile, ProfileCreate, ProfileSpec } from '../../resources/profile.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const NameParams = Type.Object({ name: Name });

/** Device profiles: cluster-wide; read with devices:read, written by admins (devices:write). */
export function profileRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/profiles', { schema: { tags: ['profiles'], response: { 200: List(Profile) } } }, async (req) => {
    return { items: await ctx.profiles.list(principalOf(req)) };
  });

  app.post<{ Body: ProfileCreate }>('/v1/profiles', { schema: { tags: ['profiles'], body: ProfileCreate, response: { 201: Profile } } }, async (req, reply) => {
    const p = await ctx.profiles.create(principalOf(req), req.body);
    return reply.code(201).send(p);
  });

  app.get<{ Params: Static<typeof NameParams> }>('/v1/profiles/:name', { schema: { tags: ['profiles'], params: NameParams, response: { 200: Profile } } }, async (req) => {
    return ctx.profiles.get(principalOf(req), req.params.name);
  });

  app.put<{ Params: Static<typeof NameParams>; Body: ProfileSpec }>('/v1/profiles/:name', {
    schema: { tags: ['profiles'], description: 'Replaces the whole profile; omitted fields take their defaults.', params: NameParams, body: ProfileSpec, response: { 200: Profile } },
  }, async (req) => {
    return ctx.profiles.replace(principalOf(req), req.params.name, req.body);
  });

  app.delete<{ Params: Static<typeof NameParams> }>('/v1/profiles/:name', { schema: { tags: ['profiles'], params: NameParams } }, async (req, reply) => {
    await ctx.profiles.delete(principalOf(req), req.params.name);
    return reply.code(204).send();
  });
}
