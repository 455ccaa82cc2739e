import { createHash } from 'node:crypto';
import { isLiveHost, type Probe } from './types.js';

/**
 * Single-thread sha256 throughput in MB/s over ~`budgetMs`: a rough, comparable
 * "how fast is one core" figure for the scheduler. Hashes 64 KiB chunks until
 * the budget is spent.
 */
export function measureSha256MBps(budgetMs = 50): number {
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  const start = process.hrtime.bigint();
  const budgetNs = BigInt(budgetMs) * 1_000_000n;
  let bytes = 0;
  let elapsed = 0n;
  do {
    createHash('sha256').update(chunk).digest();
    bytes += chunk.length;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budgetNs);
  return Math.round(bytes / 1e6 / (Number(elapsed) / 1e9));
}

/** Fills cpu.speedScore. Skipped when replaying fixtures: a fixture has no CPU to time. */
export const cpuSpeedProbe: Probe<'cpu'> = {
  name: 'cpuSpeed',
  key: 'cpu',
  periodic: false,
  async run(env) {
    if (!isLiveHost(env)) return { warnings: [] };
    return { value: { speedScore: measureSha256MBps() }, warnings: [] };
  },
};
