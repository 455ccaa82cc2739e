import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { List, Name } from '../../resources/common.js';
import { Tenant, TenantCreate } from '../../resources/tenant.js';
import { authorize } from '../../tenancy/roles.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const NameParams = Type.Object({ name: Name });

export function tenantRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/tenants', { schema: { tags: ['tenants'], response: { 200: List(Tenant) } } }, async (req) => {
    const p = principalOf(req);
    authorize(p, 'tenants:read');
    const all = await ctx.tenants.list();
    return { items: p.role === 'admin' ? all : all.filter((t) => t.name === p.tenant) };
  });

  app.get<{ Params: Static<typeof NameParams> }>('/v1/tenants/:name', { schema: { tags: ['tenants'], params: NameParams, response: { 200: Tenant } } }, async (req) => {
    authorize(principalOf(req), 'tenants:read', req.params.name);
    return ctx.tenants.get(req.params.name);
  });

  app.post<{ Body: TenantCreate }>('/v1/tenants', { schema: { tags: ['tenants'], body: TenantCreate, response: { 201: Tenant } } }, async (req, reply) => {
    authorize(principalOf(req), 'tenants:write');
    const t = await ctx.tenants.create(req.body);
    return reply.code(201).send(t);
  });

  app.delete<{ Params: Static<typeof NameParams> }>('/v1/tenants/:name', { schema: { tags: ['tenants'], params: NameParams } }, async (req, reply) => {
    authorize(principalOf(req), 'tenants:write');
    await ctx.tenants.get(req.params.name);
    await ctx.tenants.delete(req.params.name, await ctx.tokens.countActive(req.params.name));
    return reply.code(204).send();
  });
}
