// How many lines of machine console output one sandbox process may put in the server's log. Machine
// code can log in a loop (a service's interval keeps going), and every line is work on the node's
// main thread and bytes in the operator's log: an audit logged 82,000 lines (641 MB) in 10 s.
// A token bucket: a burst, then a steady rate; what is over is dropped and counted.

export type LogBudgetOptions = {
  perSecond: number;
  burst: number;
  now?: () => number;
  /**
   * Told the count of dropped lines that no line let through told (a flood that nothing follows),
   * `untoldAfterMs` after the first of them was dropped.
   */
  reportUntold?: (dropped: number) => void;
  /** Default 1000 ms. */
  untoldAfterMs?: number;
};

export const MACHINE_LOG_BUDGET: LogBudgetOptions = { perSecond: 100, burst: 200 };

export class LogBudget {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #refilledAt: number;
  #dropped = 0;
  readonly #reportUntold: ((dropped: number) => void) | undefined;
  readonly #untoldAfterMs: number;
  /** The report of drops no line let through has told yet, while one waits. */
  #untold: NodeJS.Timeout | undefined;

  constructor(options: LogBudgetOptions = MACHINE_LOG_BUDGET) {
    this.#perSecond = options.perSecond;
    this.#burst = options.burst;
    this.#now = options.now ?? Date.now;
    this.#tokens = options.burst;
    this.#refilledAt = this.#now();
    this.#reportUntold = options.reportUntold;
    this.#untoldAfterMs = options.untoldAfterMs ?? 1000;
  }

  /**
   * Whether one more line may be logged now: undefined if not (it is counted as dropped), else
   * how many lines were dropped since the last one let through, to be told with this one.
   */
  admit(): number | undefined {
    this.#refill();
    if (this.#tokens < 1) {
      this.#dropped++;
      this.#awaitTelling();
      return undefined;
    }
    this.#tokens -= 1;
    const dropped = this.#dropped;
    this.#dropped = 0;
    return dropped;
  }

  /**
   * Whether the budget is back to where a new one starts: forgetting it then loses no more than
   * the count of lines dropped long enough ago to have earned the whole burst back since.
   */
  isFull(): boolean {
    this.#refill();
    return this.#tokens >= this.#burst;
  }

  /**
   * Makes sure drops get told even if no line is let through after them: a report waits (one at
   * a time), and says what is still untold when it comes, if anything.
   */
  #awaitTelling(): void {
    const report = this.#reportUntold;
    if (report === undefined || this.#untold !== undefined) return;
    this.#untold = setTimeout(() => {
      this.#untold = undefined;
      const dropped = this.#dropped;
      this.#dropped = 0;
      if (dropped > 0) report(dropped);
    }, this.#untoldAfterMs);
    // A report must not keep a stopping server up.
    this.#untold.unref();
  }

  #refill(): void {
    const now = this.#now();
    const earned = ((now - this.#refilledAt) / 1000) * this.#perSecond;
    this.#tokens = Math.min(this.#burst, this.#tokens + earned);
    this.#refilledAt = now;
  }
}

/**
 * One budget per key (an org). A key's budget back to full is the same as a new one: past `kept`
 * keys, those are forgotten, else every org that ever logged stayed in memory.
 */
export class KeyedLogBudgets {
  readonly #budgets = new Map<string, LogBudget>();
  readonly #options: LogBudgetOptions;
  readonly #kept: number;
  readonly #reportUntold: ((key: string, dropped: number) => void) | undefined;

  /** `reportUntold`: as LogBudgetOptions.reportUntold, for the key whose budget dropped them. */
  constructor(
    options: LogBudgetOptions = MACHINE_LOG_BUDGET,
    kept = 1024,
    reportUntold?: (key: string, dropped: number) => void,
  ) {
    this.#options = options;
    this.#kept = kept;
    this.#reportUntold = reportUntold;
  }

  of(key: string): LogBudget {
    let budget = this.#budgets.get(key);
    if (budget !== undefined) return budget;
    if (this.#budgets.size >= this.#kept) {
      for (const [other, kept] of this.#budgets) if (kept.isFull()) this.#budgets.delete(other);
    }
    const report = this.#reportUntold;
    const options =
      report === undefined
        ? this.#options
        : { ...this.#options, reportUntold: (dropped: number) => report(key, dropped) };
    this.#budgets.set(key, (budget = new LogBudget(options)));
    return budget;
  }

  get size(): number {
    return this.#budgets.size;
  }
}

/** The warning that tells how many lines of one kind a budget dropped. */
export function droppedLinesWarning(kind: string, dropped: number): string {
  return `${kind}: ${dropped} lines dropped, over ${MACHINE_LOG_BUDGET.perSecond} a second`;
}
