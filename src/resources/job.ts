/**
 * Jobs and tasks. A tenant submits a `JobSpec`; the job controller cuts it into `count` tasks
 * (shards), the scheduler places each task on one device (src/scheduler/), and an agent runs it.
 * The task state machine lives in src/scheduler/task-state.ts.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Labels, Name, StringEnum, Timestamp } from './common.js';
import { Tier } from './device.js';

export const DRIVERS = ['exec', 'podman'] as const;
export const Driver = StringEnum(DRIVERS, 'exec | podman');
export type Driver = Static<typeof Driver>;

export const GPU_VENDORS = ['nvidia', 'amd', 'apple', 'intel'] as const;
export const GpuVendor = StringEnum(GPU_VENDORS, 'nvidia | amd | apple | intel');

const Env = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 128 }), Type.String({ maxLength: 32768 }), {
  description: 'environment variables',
});
const Command = Type.Array(Type.String({ maxLength: 32768 }), { minItems: 1, maxItems: 1024, description: 'argv; no shell is involved' });

export const GpuRequest = Type.Object({
  count: Type.Integer({ minimum: 1, maximum: 64 }),
  vendor: Type.Optional(GpuVendor),
  model: Type.Optional(Type.String({
    minLength: 1, maxLength: 200,
    description: 'GPU name pattern: a glob (`*A100*`, case-insensitive) or a regular expression between slashes (`/H100|A100/`)',
  })),
  minVramBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'memory every chosen GPU must have' })),
}, { additionalProperties: false });
export type GpuRequest = Static<typeof GpuRequest>;

export const AcceleratorRequest = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 63, description: 'npu | tpu | jetson | …, as the device reports it' }),
  count: Type.Integer({ minimum: 1, maximum: 64 }),
}, { additionalProperties: false });
export type AcceleratorRequest = Static<typeof AcceleratorRequest>;

export const TaskResources = Type.Object({
  cpuMillis: Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'CPU in millicores (1000 = one logical core)' }),
  memoryBytes: Type.Integer({ minimum: 1 }),
  gpus: Type.Optional(GpuRequest),
  accelerators: Type.Optional(Type.Array(AcceleratorRequest, { maxItems: 16 })),
}, { additionalProperties: false });
export type TaskResources = Static<typeof TaskResources>;

export const Constraints = Type.Object({
  labels: Type.Optional(Labels),
  tier: Type.Optional(Type.Array(Tier, { minItems: 1, description: 'any of these tiers' })),
  os: Type.Optional(Type.String({ maxLength: 32, description: 'platform as Node names it: linux, darwin, win32' })),
  arch: Type.Optional(Type.String({ maxLength: 32, description: 'x64, arm64, …' })),
  deviceIds: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 10_000, description: 'only these devices' })),
}, { additionalProperties: false, description: 'hard requirements: a device that misses one is never chosen' });
export type Constraints = Static<typeof Constraints>;

export const Affinity = Type.Object({
  labels: Type.Optional(Labels),
  tier: Type.Optional(Tier),
  deviceId: Type.Optional(Type.String()),
  weight: Type.Integer({ minimum: -100, maximum: 100, description: 'preference (> 0) or aversion (< 0) for devices that match' }),
}, { additionalProperties: false, description: 'soft preference: matching devices score higher (or lower)' });
export type Affinity = Static<typeof Affinity>;

export const RetryPolicy = Type.Object({
  attempts: Type.Integer({ minimum: 0, maximum: 100, default: 0, description: 'retries after the first attempt' }),
  backoffSeconds: Type.Number({ minimum: 0, maximum: 86_400, default: 10, description: 'delay before a retry, doubled each time' }),
}, { additionalProperties: false });
export type RetryPolicy = Static<typeof RetryPolicy>;

export const WorkdirFile = Type.Object({
  path: Type.String({ minLength: 1, maxLength: 1024, pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$', description: 'relative path inside the task working directory' }),
  content: Type.Optional(Type.String({ maxLength: 1_048_576, description: 'inline content (UTF-8)' })),
  object: Type.Optional(Type.String({ maxLength: 2048, description: 'or an object to fetch: bucket/key' })),
  mode: Type.Optional(Type.Integer({ minimum: 0, maximum: 0o777 })),
}, { additionalProperties: false });

export const Workdir = Type.Object({
  files: Type.Optional(Type.Array(WorkdirFile, { maxItems: 1000 })),
}, { additionalProperties: false });

export const AggregateStep = Type.Object({
  command: Command,
  env: Type.Optional(Env),
  image: Type.Optional(Type.String({ maxLength: 512 })),
  resources: Type.Optional(TaskResources),
}, { additionalProperties: false, description: 'runs once, after every shard succeeded' });

export const JobSpec = Type.Object({
  name: Type.Optional(Name),
  driver: Driver,
  command: Command,
  env: Type.Optional(Env),
  workdir: Type.Optional(Workdir),
  image: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'container image (podman driver)' })),
  resources: TaskResources,
  constraints: Type.Optional(Constraints),
  affinities: Type.Optional(Type.Array(Affinity, { maxItems: 32 })),
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 50, description: 'higher runs first and may preempt tasks ≥ 10 points lower' })),
  timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  retry: Type.Optional(RetryPolicy),
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1, description: 'number of shards' })),
  aggregate: Type.Optional(AggregateStep),
  spread: Type.Optional(Type.Boolean({ description: 'spread shards over devices instead of packing them' })),
}, { additionalProperties: false });
export type JobSpec = Static<typeof JobSpec>;

export const DEFAULT_PRIORITY = 50;

export const JOB_STATES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const JobState = StringEnum(JOB_STATES);
export type JobState = Static<typeof JobState>;

export const Job = Type.Object({
  id: Type.String(),
  tenant: Name,
  state: JobState,
  spec: JobSpec,
  createdAt: Timestamp,
  updatedAt: Type.Optional(Timestamp),
});
export type Job = Static<typeof Job>;

export const TASK_STATES = ['pending', 'assigned', 'running', 'succeeded', 'failed', 'lost', 'cancelled'] as const;
export const TaskState = StringEnum(TASK_STATES);
export type TaskState = Static<typeof TaskState>;

/** What the scheduler needs from the job spec, copied onto each task so placement reads one document. */
export const TaskPlacement = Type.Object({
  constraints: Type.Optional(Constraints),
  affinities: Type.Optional(Type.Array(Affinity)),
  spread: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type TaskPlacement = Static<typeof TaskPlacement>;

export const Task = Type.Object({
  id: Type.String(),
  jobId: Type.String(),
  tenant: Name,
  shardIndex: Type.Integer({ minimum: -1, description: '-1 for the aggregate step' }),
  attempt: Type.Integer({ minimum: 0 }),
  state: TaskState,
  priority: Type.Integer({ minimum: 0, maximum: 100 }),
  resources: TaskResources,
  placement: Type.Optional(TaskPlacement),
  deviceId: Type.Optional(Type.String()),
  gpuIndices: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { description: 'GPU `index` values on the device' })),
  pendingReason: Type.Optional(Type.String({ description: 'why the scheduler could not place it yet' })),
  exitCode: Type.Optional(Type.Integer()),
  failedDeviceIds: Type.Optional(Type.Array(Type.String(), { description: 'devices earlier attempts failed on (scored down)' })),
  preemptedBy: Type.Optional(Type.String({ description: 'the task that evicted the last placement' })),
  notBefore: Type.Optional(Timestamp),
  createdAt: Timestamp,
  updatedAt: Type.Optional(Timestamp),
  assignedAt: Type.Optional(Timestamp),
  startedAt: Type.Optional(Timestamp),
  finishedAt: Type.Optional(Timestamp),
});
export type Task = Static<typeof Task>;
