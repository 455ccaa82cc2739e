/**
 * Tasks: list/show, results, logs; and the agent side: the device's assignments (an event
 * stream), what to run, status reports and log batches.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ComputeService } from '../../compute/jobs.js';
import { computeKeys } from '../../compute/keys.js';
import { SseWriter, installSseShutdown } from '../../compute/sse.js';
import { followLogs, streamAssignments } from '../../compute/streams.js';
import { LogBatchPost, LogEntry, RunSpec, TaskListQuery, TaskResult, TaskStatusReport, TaskView } from '../../compute/types.js';
import { NexusError } from '../../errors/catalogue.js';
import { List, Name, StringEnum } from '../../resources/common.js';
import { schedKeys } from '../../scheduler/keys.js';
import { principalOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 160 }) });
const TenantQuery = Type.Object({ tenant: Type.Optional(Name) }, { additionalProperties: false });
const Bool = StringEnum(['true', 'false', '1', '0'] as const);
const LogsQuery = Type.Object({
  tenant: Type.Optional(Name),
  follow: Type.Optional(Bool),
  attempt: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
}, { additionalProperties: false });
const RunQuery = Type.Object({ device: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });

const TASK_END = new Set(['succeeded', 'failed', 'lost', 'cancelled']);
const BIG_BODY = 4 * 1024 * 1024;

export function taskRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const svc = new ComputeService(ctx.store, ctx.tenants);
  installSseShutdown(app);

  app.get<{ Querystring: TaskListQuery }>('/v1/tasks', { schema: { tags: ['tasks'], querystring: TaskListQuery, response: { 200: List(TaskView) } } }, async (req) => {
    return { items: await svc.listTasks(principalOf(req), req.query) };
  });

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof TenantQuery> }>('/v1/tasks/:id', {
    schema: { tags: ['tasks'], params: IdParams, querystring: TenantQuery, response: { 200: TaskView } },
  }, async (req) => svc.getTask(principalOf(req), req.params.id, req.query.tenant));

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof TenantQuery> }>('/v1/tasks/:id/result', {
    schema: { tags: ['tasks'], params: IdParams, querystring: TenantQuery, response: { 200: TaskResult } },
  }, async (req) => svc.getResult(principalOf(req), req.params.id, req.query.tenant));

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LogsQuery> }>('/v1/tasks/:id/logs', {
    schema: {
      tags: ['tasks'], params: IdParams, querystring: LogsQuery, response: { 200: List(LogEntry) },
      description: 'The task\'s output. With follow=true: a text/event-stream of `log` (LogEntry[]) and `task` events, then `end` once the task ended.',
    },
  }, async (req, reply) => {
    const by = principalOf(req);
    const task = await svc.authorizeTaskRead(by, req.params.id, req.query.tenant);
    const attempt = req.query.attempt === undefined ? undefined : Number(req.query.attempt);
    if (req.query.follow === 'true' || req.query.follow === '1') {
      const sse = new SseWriter(req, reply);
      try {
        await followLogs(ctx.store, {
          logPrefix: computeKeys.taskLogs(task.tenant, task.id),
          endKey: schedKeys.task(task.tenant, task.id),
          isEnd: (d) => TASK_END.has(d.state) && (attempt === undefined || (d as { attempt?: number }).attempt! >= attempt),
          ...(attempt !== undefined ? { attempt } : {}),
        }, (e, d) => sse.send(e, d), sse.signal);
      } catch (err) {
        sse.send('error', { error: { code: 'NEXUS_E_INTERNAL', message: (err as Error).message } });
      }
      sse.end();
      return reply;
    }
    return { items: await svc.readLogs(by, task.id, attempt, task.tenant) };
  });

  // ---- agent side ---------------------------------------------------------------------------

  app.get<{ Params: Static<typeof IdParams> }>('/v1/devices/:id/assignments', {
    schema: {
      tags: ['tasks'], params: IdParams,
      description: 'Agents only: a text/event-stream of the tasks assigned to this device: `task` {type: present|gone, task} for each current one, `synced`, then live changes.',
    },
  }, async (req, reply) => {
    const by = principalOf(req);
    if (by.role !== 'agent' && by.role !== 'admin') throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.role, action: 'watch device assignments (agents only)' });
    if (by.role === 'agent' && by.deviceId !== req.params.id) {
      throw new NexusError('NEXUS_E_FORBIDDEN', { role: by.deviceId ? `agent of device ${by.deviceId}` : 'agent (join token)', action: `watch the assignments of device ${req.params.id}` });
    }
    const sse = new SseWriter(req, reply);
    try {
      await streamAssignments(ctx.store, req.params.id, (e, d) => sse.send(e, d), sse.signal);
    } catch (err) {
      sse.send('error', { error: { code: 'NEXUS_E_INTERNAL', message: (err as Error).message } });
    }
    sse.end();
    return reply;
  });

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof RunQuery> }>('/v1/tasks/:id/run', {
    schema: { tags: ['tasks'], params: IdParams, querystring: RunQuery, response: { 200: RunSpec }, description: 'Agents only: what to run for the current attempt.' },
  }, async (req) => svc.runSpec(principalOf(req), req.params.id, req.query.device));

  app.post<{ Params: Static<typeof IdParams>; Body: TaskStatusReport }>('/v1/tasks/:id/status', {
    bodyLimit: BIG_BODY,
    schema: { tags: ['tasks'], params: IdParams, body: TaskStatusReport, response: { 200: TaskView }, description: 'Agents only: the attempt is running, or how it ended (with its result).' },
  }, async (req) => svc.report(principalOf(req), req.params.id, req.body.deviceId, req.body));

  app.post<{ Params: Static<typeof IdParams>; Body: LogBatchPost }>('/v1/tasks/:id/logs', {
    bodyLimit: BIG_BODY,
    schema: { tags: ['tasks'], params: IdParams, body: LogBatchPost, description: 'Agents only: one batch of output.' },
  }, async (req) => svc.appendLogs(principalOf(req), req.params.id, req.body.deviceId, req.body));
}
