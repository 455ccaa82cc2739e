/**
 * NEXUS scheduler: the public surface. Everything else in src/scheduler/ is internal and may
 * change.
 *
 * Typical wiring (server, under leadership):
 * ```ts
 * import { Scheduler } from '../scheduler/index.js';
 * const scheduler = new Scheduler({ store, guard: () => leadership.guard(), clock: Date.now });
 * controllers.push(scheduler);            // Controller: { name, start(signal) }
 * ```
 * A job API/controller writes tasks (`tasksForJob`) under `schedKeys.task(tenant, id)` in state
 * `pending`; the scheduler assigns them (`deviceId`, `gpuIndices`); agents and controllers move
 * them on with `updateTaskState`, which releases bookings atomically. Admission can call
 * `checkQuota`.
 *
 * @packageDocumentation
 */
export { Scheduler } from './scheduler.js';
export type { SchedulerOptions, PassResult, BatchStats, ScheduleOnceOptions } from './scheduler.js';
export { updateTaskState, allocDocOf, type AllocDoc, type UpdateTaskOptions } from './allocations.js';
export { checkQuota, usageOf, ZERO_USAGE, type Usage, type UsageDoc } from './quota.js';
export { transition, canTransition, TASK_TRANSITIONS, HOLDS_RESOURCES, FINAL_STATES } from './task-state.js';
export { tasksForJob, taskId } from './tasks.js';
export { schedKeys } from './keys.js';
export { toCandidate, type CandidateDevice, type CandidateGpu, type Allocated, type ProfileRules, type TimeWindow } from './candidate.js';
export { compileRequest, compileModelPattern, type TaskRequest } from './request.js';
export { feasible, chooseGpus, inTimeWindows, REASONS, type QuotaHook } from './feasibility.js';
export { summarizeRejections } from './pending-reason.js';
export { DEFAULT_WEIGHTS, type ScoreWeights, type LocalityHook, type SampleOptions } from './score.js';
export { Planner, PREEMPTION_GAP, type Decision, type Victim, type PreemptionPlan } from './placement.js';
export { simDevice, simTask, simFleet, simWorkload, seededRng } from './sim.js';
