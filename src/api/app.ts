/**
 * The API app factory, separate from `listen` so tests use `app.inject()`. One request pipeline:
 * auth (onRequest) → schema validation (TypeBox via Ajv, unknown fields rejected) → handler →
 * one error shape (errors.ts).
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { installAuth } from './auth.js';
import type { ApiContext } from './context.js';
import { installErrorHandling } from './errors.js';
import { lazyValidatorsFactory } from './lazy-validators.js';
import { deviceRoutes } from './routes/devices.js';
import { healthRoutes } from './routes/health.js';
import { heartbeatRoutes } from './routes/heartbeats.js';
import { jobRoutes } from './routes/jobs.js';
import { joinRoutes } from './routes/join.js';
import { profileRoutes } from './routes/profiles.js';
import { taskRoutes } from './routes/tasks.js';
import { tenantRoutes } from './routes/tenants.js';
import { tokenRoutes } from './routes/tokens.js';
import { topologyRoutes } from './routes/topology.js';

export interface AppOptions {
  /** Largest request body accepted, in bytes. @default 1048576 */
  bodyLimit?: number;
  /** pino logger options, or false for none. @default false */
  logger?: FastifyServerOptions['logger'];
  /** Node https options for TLS; plain HTTP when absent. */
  https?: { key: string; cert: string; ca?: string; requestCert?: boolean; rejectUnauthorized?: boolean };
}

/** A route module: registers its routes on the app. */
export type RouteModule = (app: FastifyInstance, ctx: ApiContext) => void;

const ROUTES: RouteModule[] = [healthRoutes, tenantRoutes, tokenRoutes, deviceRoutes, heartbeatRoutes, joinRoutes, profileRoutes, topologyRoutes, jobRoutes, taskRoutes];

export async function buildApp(ctx: ApiContext, options: AppOptions = {}, extraRoutes: RouteModule[] = []): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ...(options.https ? { https: options.https } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    return503OnClosing: true,
    schemaController: { compilersFactory: { buildValidator: lazyValidatorsFactory() } },
  } as FastifyServerOptions) as unknown as FastifyInstance;
  // Response schemas document the API; replies are plain JSON so nothing is silently dropped.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  installErrorHandling(app);
  installAuth(app, ctx.tokens);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'NEXUS API', version: ctx.version, description: 'Every error is {"error":{"code","message","field"}}; codes: docs/errors.md' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  for (const routes of [...ROUTES, ...extraRoutes]) routes(app, ctx);
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
