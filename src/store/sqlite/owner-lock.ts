/**
 * One process owns a SQLite store: watchers are fed in-process, so a second writer would be
 * invisible to them. A lock file next to the database holds the owner's pid; a lock left by a
 * dead process (crash, SIGKILL) is taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { NexusError } from '../../errors/catalogue.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class OwnerLock {
  private released = false;
  private constructor(readonly path: string) {}

  static acquire(path: string): OwnerLock {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return new OwnerLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        let owner = NaN;
        try {
          owner = Number(readFileSync(path, 'utf8').trim());
        } catch {
          continue; // removed meanwhile: try again
        }
        if (owner === process.pid || (Number.isInteger(owner) && owner > 0 && alive(owner))) {
          throw new NexusError('NEXUS_E_STORE_UNAVAILABLE', {
            detail: `another process (pid ${owner}) has this store open; stop it first, or remove ${path} if that pid is not NEXUS`,
          });
        }
        try {
          unlinkSync(path); // stale: its owner died
        } catch {
          /* someone else took it over: loop */
        }
      }
    }
    throw new NexusError('NEXUS_E_STORE_UNAVAILABLE', { detail: `could not take the lock ${path}` });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}
