/**
 * Key layout of the scheduler's documents (kept here, beside src/store/keys.ts, so the store's
 * shared layout file stays untouched until these keys are folded into it).
 *
 * - `/nexus/jobs/<tenant>/<jobId>`     Job
 * - `/nexus/tasks/<tenant>/<taskId>`   Task
 * - `/nexus/alloc/<deviceId>`          AllocDoc: what is booked on a device (compared on modRevision)
 * - `/nexus/usage/<tenant>`            UsageDoc: what a tenant has booked (compared on modRevision)
 */
import { ROOT } from '../store/keys.js';

export const schedKeys = {
  jobs: () => `${ROOT}jobs/`,
  tenantJobs: (tenant: string) => `${ROOT}jobs/${tenant}/`,
  job: (tenant: string, id: string) => `${ROOT}jobs/${tenant}/${id}`,
  tasks: () => `${ROOT}tasks/`,
  tenantTasks: (tenant: string) => `${ROOT}tasks/${tenant}/`,
  task: (tenant: string, id: string) => `${ROOT}tasks/${tenant}/${id}`,
  allocs: () => `${ROOT}alloc/`,
  alloc: (deviceId: string) => `${ROOT}alloc/${deviceId}`,
  usages: () => `${ROOT}usage/`,
  usage: (tenant: string) => `${ROOT}usage/${tenant}`,
  /** Device profiles (owned by src/cluster/profiles.ts; the scheduler only reads them). */
  profiles: () => `${ROOT}profiles/`,
} as const;
