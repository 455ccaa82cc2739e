#!/usr/bin/env node
// A BullMQ worker whose jobs each spawn a command (default `true`) and succeed when it exits 0:
// the queueing peer of bench/compute.ts.
//
//   node bench/peers/bullmq-worker.mjs --bullmq-dir /tmp/peers --port 6379 --queue q --concurrency 50 [--command true]
//
// BullMQ is never installed into the repo: --bullmq-dir names a directory where
// `npm i bullmq ioredis` was run. Prints `ready` once connected; exits on SIGTERM/SIGINT.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'bullmq-dir': { type: 'string', default: '/tmp/peers' },
    port: { type: 'string', default: '6379' },
    queue: { type: 'string', default: 'nexus-bench' },
    concurrency: { type: 'string', default: '50' },
    command: { type: 'string', default: 'true' },
  },
});
const require = createRequire(join(values['bullmq-dir'], 'package.json'));
const { Worker } = require('bullmq');

const run = () => new Promise((resolve, reject) => {
  const child = spawn(values.command, [], { stdio: 'ignore' });
  child.once('error', reject);
  child.once('exit', (code, signal) => (code === 0 ? resolve(0) : reject(new Error(`exited ${code ?? signal}`))));
});

const worker = new Worker(values.queue, run, {
  connection: { host: '127.0.0.1', port: Number(values.port), maxRetriesPerRequest: null },
  concurrency: Number(values.concurrency),
});
worker.on('error', (err) => console.error(`worker error: ${err.message}`));
await worker.waitUntilReady();
console.log('ready');
const stop = async () => {
  await worker.close().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
