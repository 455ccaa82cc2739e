import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureProbeEnv } from './env.js';
import type { ProbeEnv } from './types.js';

/** The repo root: the first directory above this (compiled or source) file holding package.json. */
export function repoRoot(from = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

export const FIXTURES = join(repoRoot(), 'test', 'fixtures', 'probes');

/** A recorded machine from test/fixtures/probes/<name> (see its README). */
export function fixture(name: string, platform: NodeJS.Platform = 'linux', arch = 'x64'): ProbeEnv {
  return fixtureProbeEnv(join(FIXTURES, name), platform, arch);
}
