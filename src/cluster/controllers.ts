/**
 * Controllers are level-triggered reconcile loops that run only on the leader. The manager starts
 * them when this server gains leadership and stops them when it loses it.
 */
import type { Leadership, LeadershipState } from './leadership.js';

export interface Controller {
  readonly name: string;
  /** Start reconciling; `signal` aborts when leadership is lost or the server stops. */
  start(signal: AbortSignal): Promise<void> | void;
}

export type ControllersState = 'idle' | 'running' | 'standby';

export class ControllerManager {
  private abort: AbortController | undefined;
  private current: ControllersState = 'idle';

  constructor(private readonly leadership: Leadership, private readonly controllers: Controller[]) {}

  get state(): ControllersState {
    return this.current;
  }

  async start(): Promise<void> {
    this.leadership.on('change', (s) => void this.onLeadership(s));
    await this.onLeadership(this.leadership.state);
  }

  private async onLeadership(state: LeadershipState): Promise<void> {
    if (state === 'leader' && !this.abort) {
      this.abort = new AbortController();
      this.current = 'running';
      for (const c of this.controllers) await c.start(this.abort.signal);
    } else if (state !== 'leader') {
      this.abort?.abort();
      this.abort = undefined;
      this.current = state === 'stopped' ? 'idle' : 'standby';
    }
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    this.current = 'idle';
  }
}
