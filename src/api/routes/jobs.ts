/** Jobs: submit, list, show (with tasks), cancel, result, logs (live with ?follow=true), events. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ComputeService } from '../../compute/jobs.js';
import { computeKeys } from '../../compute/keys.js';
import { SseWriter, installSseShutdown } from '../../compute/sse.js';
import { followLogs } from '../../compute/streams.js';
import { ComputeEvent, JobView, LogEntry, TaskResult } from '../../compute/types.js';
import { List, Name, StringEnum } from '../../resources/common.js';
import { Job, JobSpec, JobState } from '../../resources/job.js';
import { schedKeys } from '../../scheduler/keys.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const TenantQuery = Type.Object({ tenant: Type.Optional(Name) }, { additionalProperties: false });
const ListQuery = Type.Object({ tenant: Type.Optional(Name), state: Type.Optional(JobState) }, { additionalProperties: false });
const Bool = StringEnum(['true', 'false', '1', '0'] as const);
const LogsQuery = Type.Object({ tenant: Type.Optional(Name), follow: Type.Optional(Bool) }, { additionalProperties: false });
const EventsQuery = Type.Object({
  job: Type.Optional(Type.String({ maxLength: 128 })),
  tenant: Type.Optional(Name),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
}, { additionalProperties: false });

const JOB_END = new Set(['succeeded', 'failed', 'cancelled']);

export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const svc = new ComputeService(ctx.store, ctx.tenants);
  installSseShutdown(app);

  app.post<{ Body: JobSpec; Querystring: Static<typeof TenantQuery> }>('/v1/jobs', {
    schema: { tags: ['jobs'], body: JobSpec, querystring: TenantQuery, response: { 201: JobView } },
  }, async (req, reply) => {
    const job = await svc.createJob(principalOf(req), req.body, req.query.tenant);
    return reply.code(201).send(job);
  });

  app.get<{ Querystring: Static<typeof ListQuery> }>('/v1/jobs', { schema: { tags: ['jobs'], querystring: ListQuery, response: { 200: List(Job) } } }, async (req) => {
    return { items: await svc.listJobs(principalOf(req), req.query.tenant, req.query.state) };
  });

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof TenantQuery> }>('/v1/jobs/:id', {
    schema: { tags: ['jobs'], params: IdParams, querystring: TenantQuery, response: { 200: JobView } },
  }, async (req) => svc.getJob(principalOf(req), req.params.id, req.query.tenant));

  app.post<{ Params: Static<typeof IdParams>; Querystring: Static<typeof TenantQuery> }>('/v1/jobs/:id/cancel', {
    schema: { tags: ['jobs'], params: IdParams, querystring: TenantQuery, response: { 200: JobView } },
  }, async (req) => svc.cancelJob(principalOf(req), req.params.id, req.query.tenant));

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof TenantQuery> }>('/v1/jobs/:id/result', {
    schema: { tags: ['jobs'], params: IdParams, querystring: TenantQuery, response: { 200: TaskResult } },
  }, async (req) => svc.jobResult(principalOf(req), req.params.id, req.query.tenant));

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LogsQuery> }>('/v1/jobs/:id/logs', {
    schema: {
      tags: ['jobs'], params: IdParams, querystring: LogsQuery, response: { 200: List(LogEntry) },
      description: 'Output of every task of the job. With follow=true: a text/event-stream of `log` (LogEntry[]), `task` (a task changed) and, once the job ended, `end` (the job).',
    },
  }, async (req, reply) => {
    const job = await svc.authorizeJobRead(principalOf(req), req.params.id, req.query.tenant);
    const logPrefix = `${computeKeys.logs()}${job.tenant}/${job.id}-`;
    if (req.query.follow === 'true' || req.query.follow === '1') {
      const sse = new SseWriter(req, reply);
      try {
        await followLogs(ctx.store, {
          logPrefix,
          endKey: schedKeys.job(job.tenant, job.id),
          isEnd: (d) => JOB_END.has(d.state),
          taskPrefix: `${schedKeys.tenantTasks(job.tenant)}${job.id}-`,
        }, (e, d) => sse.send(e, d), sse.signal);
      } catch (err) {
        sse.send('error', { error: { code: 'NEXUS_E_INTERNAL', message: (err as Error).message } });
      }
      sse.end();
      return reply;
    }
    const tasks = await svc.jobTasks(job.tenant, job.id);
    const items = [];
    for (const t of tasks) items.push(...(await svc.readLogs(principalOf(req), t.id, undefined, job.tenant)));
    return { items };
  });

  app.get<{ Querystring: Static<typeof EventsQuery> }>('/v1/events', {
    schema: { tags: ['jobs'], querystring: EventsQuery, response: { 200: List(ComputeEvent) }, description: 'Task and job state changes, oldest first.' },
  }, async (req) => ({ items: await svc.listEvents(principalOf(req), req.query) }));
}
