// Time for the engine, injected so tests can drive timers without sleeping.

export type TimerHandle = { cancel(): void };

export interface Clock {
  now(): number;
  /** Calls `callback` after `ms` milliseconds (of this clock's time). */
  setTimeout(callback: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    // Node caps timeouts at 2^31-1 ms; longer waits are re-armed by the caller when they fire.
    const handle = setTimeout(callback, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A clock that moves only when told to; `advance` runs every callback that falls due, in order. */
export class ManualClock implements Clock {
  private time: number;
  private readonly pending: Array<{ at: number; seq: number; callback: () => void }> = [];
  private seq = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const entry = { at: this.time + Math.max(0, ms), seq: this.seq++, callback };
    this.pending.push(entry);
    return {
      cancel: () => {
        const index = this.pending.indexOf(entry);
        if (index >= 0) this.pending.splice(index, 1);
      },
    };
  }

  /** Moves time forward by `ms`, firing due callbacks one at a time at their own instants. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      this.pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.pending[0];
      if (!next || next.at > target) break;
      this.pending.shift();
      this.time = Math.max(this.time, next.at);
      next.callback();
    }
    this.time = target;
  }
}
