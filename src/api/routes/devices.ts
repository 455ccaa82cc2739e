import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { List } from '../../resources/common.js';
import { Device, DeviceRegister } from '../../resources/device.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

export function deviceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/devices', { schema: { tags: ['devices'], response: { 200: List(Device) } } }, async (req) => {
    return { items: await ctx.devices.list(principalOf(req)) };
  });

  app.get<{ Params: Static<typeof IdParams> }>('/v1/devices/:id', { schema: { tags: ['devices'], params: IdParams, response: { 200: Device } } }, async (req) => {
    return ctx.devices.get(principalOf(req), req.params.id);
  });

  app.post<{ Body: DeviceRegister }>('/v1/devices', { schema: { tags: ['devices'], body: DeviceRegister, response: { 200: Device } } }, async (req) => {
    return ctx.devices.register(principalOf(req), req.body);
  });
}
