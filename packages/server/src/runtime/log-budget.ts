// How many lines of machine console output one sandbox process may put in the server's log. Machine
// code can log in a loop (a service's interval keeps going), and every line is work on the node's
// main thread and bytes in the operator's log: an audit logged 82,000 lines (641 MB) in 10 s.
// A token bucket: a burst, then a steady rate; what is over is dropped and counted.

export type LogBudgetOptions = { perSecond: number; burst: number; now?: () => number };

export const MACHINE_LOG_BUDGET: LogBudgetOptions = { perSecond: 100, burst: 200 };

export class LogBudget {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #refilledAt: number;
  #dropped = 0;

  constructor(options: LogBudgetOptions = MACHINE_LOG_BUDGET) {
    this.#perSecond = options.perSecond;
    this.#burst = options.burst;
    this.#now = options.now ?? Date.now;
    this.#tokens = options.burst;
    this.#refilledAt = this.#now();
  }

  /** Whether one more line may be logged now; a refused one is counted (see takeDropped). */
  take(): boolean {
    const now = this.#now();
    const earned = ((now - this.#refilledAt) / 1000) * this.#perSecond;
    this.#tokens = Math.min(this.#burst, this.#tokens + earned);
    this.#refilledAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.#dropped++;
    return false;
  }

  /** How many lines were refused since the last call: told once, with the next line let through. */
  takeDropped(): number {
    const dropped = this.#dropped;
    this.#dropped = 0;
    return dropped;
  }
}
