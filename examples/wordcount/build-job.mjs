// Writes job.json: the word-count job with the corpus and both scripts inlined as work-dir files,
// so it runs on any device of the pool (nothing has to be installed there but sh and coreutils).
//   node examples/wordcount/build-job.mjs && nexus run --spec examples/wordcount/job.json --wait
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const parts = readdirSync(join(here, 'corpus')).filter((f) => f.endsWith('.txt')).sort();
const file = (path, from, mode) => ({ path, content: readFileSync(join(here, from), 'utf8'), ...(mode ? { mode } : {}) });
const job = {
  name: 'wordcount',
  driver: 'exec',
  command: ['sh', 'shard.sh'],
  count: parts.length,
  resources: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
  retry: { attempts: 1, backoffSeconds: 1 },
  workdir: {
    files: [
      file('shard.sh', 'shard.sh', 0o755),
      file('aggregate.sh', 'aggregate.sh', 0o755),
      ...parts.map((p) => file(`corpus/${p}`, `corpus/${p}`)),
    ],
  },
  aggregate: { command: ['sh', 'aggregate.sh'] },
};
writeFileSync(join(here, 'job.json'), JSON.stringify(job, null, 2) + '\n');
console.log(`wrote ${join(here, 'job.json')}: ${parts.length} shards`);
