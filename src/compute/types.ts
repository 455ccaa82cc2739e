/**
 * API shapes of the compute product that are not in src/resources/job.ts: what an agent reports,
 * what it runs, log batches, results and task events. Each is a TypeBox schema (validation, TS
 * type and OpenAPI in one object).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Job, Task, TaskState } from '../resources/job.js';
import { StringEnum, Timestamp } from '../resources/common.js';

/** A task document as stored: the scheduler's Task plus the human reason of its last move. */
export type TaskDoc = Task & { message?: string };

export const TaskView = Type.Intersect([Task, Type.Object({ message: Type.Optional(Type.String()) })]);

/** GET /v1/jobs/:id: the job with its tasks (numeric shard order; the aggregate step last). */
export const JobView = Type.Intersect([Job, Type.Object({
  tasks: Type.Array(TaskView),
  counts: Type.Record(Type.String(), Type.Integer(), { description: 'tasks per state' }),
  tasksTruncated: Type.Optional(Type.Boolean({ description: 'only the first tasks are listed; use GET /v1/tasks?job=ID' })),
  message: Type.Optional(Type.String()),
})]);
export type JobView = Job & { tasks: TaskDoc[]; counts: Record<string, number>; tasksTruncated?: boolean; message?: string };

/** The job document as stored: Job plus why it ended (failed/cancelled). */
export type JobDoc = Job & { message?: string; cancelRequestedAt?: string };

export const REPORT_STATES = ['running', 'succeeded', 'failed', 'lost'] as const;

/** POST /v1/tasks/:id/status — an agent reports on the attempt it runs. */
export const TaskStatusReport = Type.Object({
  deviceId: Type.String({ minLength: 1, maxLength: 128, description: 'the reporting device' }),
  attempt: Type.Integer({ minimum: 0 }),
  state: StringEnum(REPORT_STATES, 'running | succeeded | failed | lost'),
  exitCode: Type.Optional(Type.Integer()),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
  result: Type.Optional(Type.Object({
    data: Type.String({ maxLength: 1_500_000 }),
    encoding: StringEnum(['utf8', 'base64'] as const),
    truncated: Type.Optional(Type.Boolean()),
    size: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes the task wrote (before truncation)' })),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type TaskStatusReport = Static<typeof TaskStatusReport>;

/** `/nexus/results/<tenant>/<taskId>`: the result of a task's successful (or last) attempt. */
export const TaskResult = Type.Object({
  taskId: Type.String(),
  jobId: Type.String(),
  tenant: Type.String(),
  attempt: Type.Integer(),
  exitCode: Type.Optional(Type.Integer()),
  data: Type.String(),
  encoding: StringEnum(['utf8', 'base64'] as const),
  truncated: Type.Boolean(),
  size: Type.Integer(),
  at: Timestamp,
});
export type TaskResult = Static<typeof TaskResult>;

export const LogChunk = Type.Object({
  stream: StringEnum(['stdout', 'stderr'] as const),
  data: Type.String(),
  ts: Type.Number({ description: 'epoch ms' }),
}, { additionalProperties: false });
export type LogChunk = Static<typeof LogChunk>;

/** POST /v1/tasks/:id/logs — one batch; `seq` makes a re-sent batch overwrite itself. */
export const LogBatchPost = Type.Object({
  deviceId: Type.String({ minLength: 1, maxLength: 128, description: 'the posting device' }),
  attempt: Type.Integer({ minimum: 0 }),
  run: Type.String({ pattern: '^[0-9a-z]{1,16}$', description: 'which run of the attempt (the agent derives it from assignedAt)' }),
  seq: Type.Integer({ minimum: 0, maximum: 99_999_999 }),
  chunks: Type.Array(LogChunk, { minItems: 1, maxItems: 10_000 }),
  truncated: Type.Optional(Type.Boolean({ description: 'the agent stopped shipping logs here (size cap)' })),
}, { additionalProperties: false });
export type LogBatchPost = Static<typeof LogBatchPost>;

/** A log line as readers get it. */
export const LogEntry = Type.Object({
  taskId: Type.String(),
  shardIndex: Type.Optional(Type.Integer()),
  attempt: Type.Integer(),
  stream: StringEnum(['stdout', 'stderr'] as const),
  data: Type.String(),
  ts: Type.Number(),
});
export type LogEntry = Static<typeof LogEntry>;

/** `/nexus/events/<tenant>/<rev>-<id>`: one state change of a task or a job. */
export const ComputeEvent = Type.Object({
  revision: Type.Integer({ description: 'store revision of the change' }),
  at: Timestamp,
  tenant: Type.String(),
  kind: StringEnum(['task', 'job'] as const),
  jobId: Type.String(),
  taskId: Type.Optional(Type.String()),
  from: Type.Optional(Type.String()),
  to: Type.String(),
  attempt: Type.Optional(Type.Integer()),
  deviceId: Type.Optional(Type.String()),
  exitCode: Type.Optional(Type.Integer()),
  reason: Type.Optional(Type.String()),
});
export type ComputeEvent = Static<typeof ComputeEvent>;

/** GET /v1/tasks/:id/run — everything an agent needs to start one attempt. */
export const RunSpec = Type.Object({
  taskId: Type.String(),
  jobId: Type.String(),
  tenant: Type.String(),
  attempt: Type.Integer(),
  shardIndex: Type.Integer(),
  shardCount: Type.Integer(),
  driver: StringEnum(['exec', 'podman'] as const),
  command: Type.Array(Type.String()),
  env: Type.Record(Type.String(), Type.String()),
  image: Type.Optional(Type.String()),
  files: Type.Array(Type.Object({
    path: Type.String(),
    content: Type.String(),
    encoding: Type.Optional(StringEnum(['utf8', 'base64'] as const)),
    mode: Type.Optional(Type.Integer()),
  })),
  /** For the aggregate step: the work-dir-relative folder holding `shards/<i>`; exported as NEXUS_SHARD_RESULTS_DIR. */
  shardResultsDir: Type.Optional(Type.String()),
  timeoutSeconds: Type.Optional(Type.Integer()),
  cpuMillis: Type.Integer(),
  memoryBytes: Type.Integer(),
  gpus: Type.Optional(Type.Object({ vendor: Type.String(), indices: Type.Array(Type.Integer()) })),
});
export type RunSpec = Static<typeof RunSpec>;

/** SSE `task` message of GET /v1/devices/:id/assignments. */
export const AssignmentMessage = Type.Object({
  /** `present`: the task is assigned/running here; `gone`: it left this device (cancelled, preempted, lost, ended). */
  type: StringEnum(['present', 'gone'] as const),
  task: TaskView,
});
export type AssignmentMessage = { type: 'present' | 'gone'; task: TaskDoc };

export const TaskListQuery = Type.Object({
  job: Type.Optional(Type.String({ maxLength: 128 })),
  state: Type.Optional(TaskState),
  device: Type.Optional(Type.String({ maxLength: 128 })),
  tenant: Type.Optional(Type.String({ maxLength: 63 })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
}, { additionalProperties: false });
export type TaskListQuery = Static<typeof TaskListQuery>;
