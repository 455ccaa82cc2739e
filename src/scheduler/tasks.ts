/** Cutting a job into tasks: one per shard, each carrying what placement needs. */
import { DEFAULT_PRIORITY, type Job, type Task } from '../resources/job.js';

/** The task id of a job's shard (`-1` is the aggregate step). */
export function taskId(jobId: string, shardIndex: number): string {
  return shardIndex < 0 ? `${jobId}-aggregate` : `${jobId}-${shardIndex}`;
}

/** The pending tasks of a job's shards (the aggregate step is created once they all succeed). */
export function tasksForJob(job: Job, at: number | string | Date): Task[] {
  const when = typeof at === 'string' ? at : new Date(at).toISOString();
  const s = job.spec;
  const placement = {
    ...(s.constraints ? { constraints: s.constraints } : {}),
    ...(s.affinities ? { affinities: s.affinities } : {}),
    ...(s.spread ? { spread: true } : {}),
  };
  const out: Task[] = [];
  for (let i = 0; i < (s.count ?? 1); i++) {
    out.push({
      id: taskId(job.id, i),
      jobId: job.id,
      tenant: job.tenant,
      shardIndex: i,
      attempt: 0,
      state: 'pending',
      priority: s.priority ?? DEFAULT_PRIORITY,
      resources: s.resources,
      ...(Object.keys(placement).length > 0 ? { placement } : {}),
      createdAt: when,
    });
  }
  return out;
}
