/** Starts the floor server (floor-server.ts) as a child process, for comparison with NEXUS. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface FloorServer {
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `intervalMs`: the heartbeat interval the floor announces (the one the real server announced). */
export function startFloorServer(certPath: string, keyPath: string, intervalMs = 1000, timeoutMs = 10_000): Promise<FloorServer> {
  const script = fileURLToPath(new URL('./floor-server.js', import.meta.url));
  const child = spawn(process.execPath, [script, certPath, keyPath, String(intervalMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`floor server not listening after ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({
        url: `https://127.0.0.1:${m[1]}`,
        pid: child.pid!,
        child,
        stop: () => new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(t);
            done();
          });
          child.kill('SIGTERM');
        }),
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`floor server exited with ${code}: ${out}`));
    });
  });
}
