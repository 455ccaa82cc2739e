/** Job ids: `j` + creation time (base 36, so ids sort by age) + 6 random hex digits; no dashes. */
import { randomBytes } from 'node:crypto';

export const JOB_ID_RE = /^j[0-9a-z]{6,30}$/;

export function newJobId(now: number): string {
  return `j${now.toString(36).padStart(9, '0')}${randomBytes(3).toString('hex')}`;
}

/** The job a task id belongs to (`<jobId>-<shard>` or `<jobId>-aggregate`), or undefined. */
export function jobIdOfTask(taskId: string): string | undefined {
  const i = taskId.indexOf('-');
  if (i <= 0) return undefined;
  const job = taskId.slice(0, i);
  return JOB_ID_RE.test(job) ? job : undefined;
}
