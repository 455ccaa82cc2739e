import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { NexusError } from '../../errors/catalogue.js';
import { DEFAULT_PROBE_BYTES, MAX_PROBE_BYTES, Topology, TopologyReport, TopologyReportResult } from '../../resources/topology.js';
import { authorize } from '../../tenancy/roles.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';


const ProbeQuery = Type.Object({
  bytes: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$', description: `bytes to stream, 1-${MAX_PROBE_BYTES} (default ${DEFAULT_PROBE_BYTES})` })),
}, { additionalProperties: false });
const MatrixQuery = Type.Object({
  maxAgeSeconds: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$', description: 'leave out links measured longer ago than this' })),
}, { additionalProperties: false });

/** Incompressible filler, made once. */
let filler: Buffer | undefined;

function* chunks(total: number): Generator<Buffer> {
  filler ??= randomBytes(64 * 1024);
  for (let left = total; left > 0; left -= filler.length) yield left >= filler.length ? filler : filler.subarray(0, left);
}

export function topologyRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: Static<typeof MatrixQuery> }>('/v1/topology', { schema: { tags: ['topology'], querystring: MatrixQuery, response: { 200: Topology } } }, async (req) => {
    const maxAge = req.query.maxAgeSeconds;
    return ctx.topology.matrix(principalOf(req), maxAge === undefined ? {} : { maxAgeMs: Number(maxAge) * 1000 });
  });

  app.post<{ Body: TopologyReport }>('/v1/topology/samples', { schema: { tags: ['topology'], body: TopologyReport, response: { 200: TopologyReportResult } } }, async (req) => {
    return ctx.topology.report(principalOf(req), req.body);
  });

  app.get<{ Querystring: Static<typeof ProbeQuery> }>('/v1/topology/probe', {
    schema: { tags: ['topology'], description: `Streams the given number of random bytes (at most ${MAX_PROBE_BYTES}) for agents to measure bandwidth.`, querystring: ProbeQuery },
  }, async (req, reply) => {
    authorize(principalOf(req), 'devices:read');
    const bytes = req.query.bytes === undefined ? DEFAULT_PROBE_BYTES : Number(req.query.bytes);
    if (bytes < 1 || bytes > MAX_PROBE_BYTES) throw new NexusError('NEXUS_E_VALIDATION', { field: 'querystring.bytes', detail: `must be between 1 and ${MAX_PROBE_BYTES}` });
    void reply.header('content-type', 'application/octet-stream').header('content-length', String(bytes)).header('cache-control', 'no-store');
    return reply.send(Readable.from(chunks(bytes), { objectMode: false }));
  });
}
