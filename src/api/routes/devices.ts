import { NexusError } from '../../errors/catalogue.js';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { List } from '../../resources/common.js';
import { Device, DevicePatch, DeviceRegister } from '../../resources/device.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
export type IdParams = Static<typeof IdParams>;

export function deviceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/devices', { schema: { tags: ['devices'], response: { 200: List(Device) } } }, async (req) => {
    return { items: await ctx.devices.list(principalOf(req)) };
  });

  app.get<{ Params: IdParams }>('/v1/devices/:id', { schema: { tags: ['devices'], params: IdParams, response: { 200: Device } } }, async (req) => {
    return ctx.devices.get(principalOf(req), req.params.id);
  });

  app.post<{ Body: DeviceRegister }>('/v1/devices', { schema: { tags: ['devices'], body: DeviceRegister, response: { 200: Device } } }, async (req) => {
    return ctx.devices.register(principalOf(req), req.body);
  });

  app.patch<{ Params: IdParams; Body: DevicePatch }>('/v1/devices/:id', {
    schema: { tags: ['devices'], summary: 'drain, maintenance, labels, tier, profile', params: IdParams, body: DevicePatch, response: { 200: Device } },
  }, async (req) => {
    const name = req.body.profile;
    if (name && !(await ctx.profiles.find(name))) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'profile', id: name }, { field: 'profile' });
    return ctx.devices.patch(principalOf(req), req.params.id, req.body);
  });

  app.post<{ Params: IdParams }>('/v1/devices/:id/revoke', {
    schema: { tags: ['devices'], summary: 'revoke the device credential', params: IdParams, response: { 200: Device } },
  }, async (req) => {
    const device = await ctx.devices.revoke(principalOf(req), req.params.id);
    // Its open heartbeat streams end now (on other servers, at their next credential check).
    ctx.heartbeatStreams.closeDevice(device.id, new NexusError('NEXUS_E_DEVICE_REVOKED', { id: device.id, at: device.revokedAt ?? '' }));
    return device;
  });
}
