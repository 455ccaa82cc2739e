#!/usr/bin/env node
// The published entry point: the compiled CLI lives in dist/ (built by `npm install` through the
// `prepare` script, or `npm run build`).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
    console.error('nexus: the CLI is not built yet; run `npm install` (or `npm run build`) in the repository first');
  } else {
    console.error(err);
  }
  process.exit(1);
});
