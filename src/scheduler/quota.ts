/**
 * Tenant quotas (src/resources/tenant.ts `quotas`): CPU, memory, GPUs and concurrent tasks. The
 * scheduler books usage in `/nexus/usage/<tenant>` in the same transaction that assigns a task,
 * so the check below holds across schedulers; the API can call `checkQuota` at admission too.
 */
import type { Quotas } from '../resources/tenant.js';
import type { TaskResources } from '../resources/job.js';
import { formatBytes } from './pending-reason.js';

/** What a tenant has booked (the `/nexus/usage/<tenant>` document, less its name). */
export interface Usage {
  cpuMillis: number;
  memoryBytes: number;
  gpus: number;
  /** Tasks holding resources (assigned or running). */
  tasks: number;
}

export interface UsageDoc extends Usage {
  tenant: string;
}

export const ZERO_USAGE: Readonly<Usage> = Object.freeze({ cpuMillis: 0, memoryBytes: 0, gpus: 0, tasks: 0 });

/** The usage one task adds (`count` tasks of the same shape: pass `count`). */
export function usageOf(resources: TaskResources, count = 1): Usage {
  return {
    cpuMillis: resources.cpuMillis * count,
    memoryBytes: resources.memoryBytes * count,
    gpus: (resources.gpus?.count ?? 0) * count,
    tasks: count,
  };
}

/**
 * `undefined` when `usage + request` stays within `quotas`, else a human reason naming the
 * first quota exceeded. Quotas that are absent are unlimited.
 *
 * @example admission: can this job ever run?  checkQuota(tenant.quotas, ZERO_USAGE, usageOf(spec.resources, 1))
 */
export function checkQuota(quotas: Quotas | undefined, usage: Usage, request: Usage, tenant = 'tenant'): string | undefined {
  if (!quotas) return undefined;
  if (quotas.cpuMillis !== undefined && usage.cpuMillis + request.cpuMillis > quotas.cpuMillis) {
    return `tenant ${tenant} quota: CPU ${usage.cpuMillis}m used + ${request.cpuMillis}m requested > ${quotas.cpuMillis}m`;
  }
  if (quotas.memoryBytes !== undefined && usage.memoryBytes + request.memoryBytes > quotas.memoryBytes) {
    return `tenant ${tenant} quota: memory ${formatBytes(usage.memoryBytes)} used + ${formatBytes(request.memoryBytes)} requested > ${formatBytes(quotas.memoryBytes)}`;
  }
  if (quotas.gpus !== undefined && request.gpus > 0 && usage.gpus + request.gpus > quotas.gpus) {
    return `tenant ${tenant} quota: GPUs ${usage.gpus} used + ${request.gpus} requested > ${quotas.gpus}`;
  }
  if (quotas.tasks !== undefined && usage.tasks + request.tasks > quotas.tasks) {
    return `tenant ${tenant} quota: ${usage.tasks} tasks running + ${request.tasks} > ${quotas.tasks}`;
  }
  return undefined;
}

/** `a + sign * b`, in place. */
export function addUsage(a: Usage, b: Usage, sign: 1 | -1 = 1): Usage {
  a.cpuMillis += sign * b.cpuMillis;
  a.memoryBytes += sign * b.memoryBytes;
  a.gpus += sign * b.gpus;
  a.tasks += sign * b.tasks;
  return a;
}
