/**
 * Maps every failure to the one JSON error shape `{"error":{"code","message","field"}}` with a
 * stable NEXUS_E_… code. Fastify's own errors (bad JSON, body size, validation) are translated here.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NexusError } from '../errors/catalogue.js';

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/quotas/cpuMillis` → `quotas.cpuMillis`. */
function dotted(path: string, leaf?: string): string {
  const parts = path.split('/').filter(Boolean);
  if (leaf) parts.push(leaf);
  return parts.join('.');
}

function fromValidation(errors: AjvError[], context: string | undefined): NexusError {
  const e = errors[0]!;
  const where = context && context !== 'body' ? `${context}.` : '';
  if (e.keyword === 'additionalProperties') {
    return new NexusError('NEXUS_E_UNKNOWN_FIELD', { field: where + dotted(e.instancePath, String(e.params.additionalProperty)) });
  }
  if (e.keyword === 'required') {
    return new NexusError('NEXUS_E_VALIDATION', { field: where + dotted(e.instancePath, String(e.params.missingProperty)), detail: 'it is required' });
  }
  let detail = e.message ?? 'invalid value';
  if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues)) detail = `must be one of ${e.params.allowedValues.join(', ')}`;
  const field = where + dotted(e.instancePath) || (context ?? 'body');
  return new NexusError('NEXUS_E_VALIDATION', { field, detail });
}

export function toNexusError(err: FastifyError & { validation?: AjvError[]; validationContext?: string }, req: FastifyRequest): NexusError {
  if (err instanceof NexusError) return err;
  if (err.validation) return fromValidation(err.validation, err.validationContext);
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new NexusError('NEXUS_E_BAD_JSON', { detail: err.message }, { cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new NexusError('NEXUS_E_BODY_TOO_LARGE', { limit: req.routeOptions.bodyLimit ?? 0 }, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new NexusError('NEXUS_E_UNSUPPORTED_MEDIA', { detail: req.headers['content-type'] ?? 'none' }, { cause: err });
  }
  if (err instanceof SyntaxError) return new NexusError('NEXUS_E_BAD_JSON', { detail: err.message }, { cause: err });
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new NexusError('NEXUS_E_VALIDATION', { field: 'request', detail: err.message }, { cause: err });
  }
  return new NexusError('NEXUS_E_INTERNAL', { detail: `request ${req.id}` }, { cause: err });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const nerr = toNexusError(err, req);
    if (nerr.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.debug({ code: nerr.code }, nerr.message);
    void reply.code(nerr.status).type('application/json').send(nerr.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const nerr = new NexusError('NEXUS_E_ROUTE_NOT_FOUND', { method: req.method, url: req.url.split('?')[0] });
    void reply.code(nerr.status).send(nerr.toJSON());
  });
}
