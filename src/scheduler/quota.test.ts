import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ZERO_USAGE, addUsage, checkQuota, usageOf } from './quota.js';

const GiB = 1024 ** 3;

describe('tenant quota', () => {
  const use = { cpuMillis: 3000, memoryBytes: 3 * GiB, gpus: 1, tasks: 3 };

  it('no quotas, or absent fields, mean unlimited', () => {
    assert.equal(checkQuota(undefined, use, usageOf({ cpuMillis: 1e6, memoryBytes: 1e15 })), undefined);
    assert.equal(checkQuota({}, use, usageOf({ cpuMillis: 1e6, memoryBytes: 1e15 })), undefined);
  });

  it('each dimension: within is fine, one over is refused with a reason', () => {
    assert.equal(checkQuota({ cpuMillis: 4000 }, use, usageOf({ cpuMillis: 1000, memoryBytes: 1 })), undefined);
    assert.match(checkQuota({ cpuMillis: 4000 }, use, usageOf({ cpuMillis: 1001, memoryBytes: 1 }), 'acme')!, /tenant acme quota: CPU 3000m used \+ 1001m requested > 4000m/);
    assert.equal(checkQuota({ memoryBytes: 4 * GiB }, use, usageOf({ cpuMillis: 1, memoryBytes: GiB })), undefined);
    assert.match(checkQuota({ memoryBytes: 4 * GiB }, use, usageOf({ cpuMillis: 1, memoryBytes: GiB + 1 }))!, /memory 3 GiB used/);
    assert.equal(checkQuota({ gpus: 2 }, use, usageOf({ cpuMillis: 1, memoryBytes: 1, gpus: { count: 1 } })), undefined);
    assert.match(checkQuota({ gpus: 2 }, use, usageOf({ cpuMillis: 1, memoryBytes: 1, gpus: { count: 2 } }))!, /GPUs 1 used \+ 2 requested > 2/);
    assert.equal(checkQuota({ tasks: 4 }, use, usageOf({ cpuMillis: 1, memoryBytes: 1 })), undefined);
    assert.match(checkQuota({ tasks: 3 }, use, usageOf({ cpuMillis: 1, memoryBytes: 1 }))!, /3 tasks running \+ 1 > 3/);
  });

  it('a GPU quota of 0 does not block CPU-only tasks', () => {
    assert.equal(checkQuota({ gpus: 0 }, ZERO_USAGE, usageOf({ cpuMillis: 1, memoryBytes: 1 })), undefined);
  });

  it('admission: a job whose shards can never fit is refused against zero usage', () => {
    assert.ok(checkQuota({ cpuMillis: 8000 }, ZERO_USAGE, usageOf({ cpuMillis: 1000, memoryBytes: 1 }, 9)));
    assert.equal(checkQuota({ cpuMillis: 8000 }, ZERO_USAGE, usageOf({ cpuMillis: 1000, memoryBytes: 1 }, 8)), undefined);
  });

  it('addUsage adds and subtracts in place', () => {
    const u = { ...ZERO_USAGE };
    addUsage(u, use);
    addUsage(u, usageOf({ cpuMillis: 1000, memoryBytes: GiB, gpus: { count: 1 } }), -1);
    assert.deepEqual(u, { cpuMillis: 2000, memoryBytes: 2 * GiB, gpus: 0, tasks: 2 });
  });
});
