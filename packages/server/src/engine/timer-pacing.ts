// How fast one instance's own timers may drive it. A machine whose delayed event arms the next one
// due at once (`after: { 0: ... }` back to the same state) would otherwise commit for ever, as
// fast as the node can go, filling the history and starving every other instance: nothing from
// outside paces it. So the transitions that timers cause (each delivery and the events the machine
// sends itself after it) are counted per instance against a budget that refills at a steady rate;
// while an instance has spent more than it has, the timers it arms are due no sooner than when the
// budget is back. Timers already armed keep their times, and a machine within the budget (any
// ticker slower than the refill rate, any burst under the cap) is never touched.
// Per node: on several nodes each counts the deliveries it makes, so a loop is paced as if the
// rate were that many times larger.

export type TimerPacingLimits = {
  /** Transitions an instance's timers may cause at once before pacing starts. */
  burst: number;
  /** The steady rate the budget refills at, in transitions per second. */
  perSecond: number;
};

/** A 20 Hz ticker (one `after: 50`) runs untouched; a loop with no delay is held to that rate. */
export const DEFAULT_TIMER_PACING: TimerPacingLimits = { burst: 100, perSecond: 20 };

/**
 * Instances whose budget is remembered at most; past it, the least recently charged are forgotten
 * (and start full again), so memory stays bounded whatever a machine does.
 */
const MAX_TRACKED_INSTANCES = 10_000;

type Budget = { tokens: number; at: number };

export class TimerPacing {
  readonly #limits: TimerPacingLimits;
  readonly #budgets = new Map<string, Budget>();

  constructor(limits: TimerPacingLimits = DEFAULT_TIMER_PACING) {
    if (!Number.isInteger(limits.burst) || limits.burst < 1) {
      throw new TypeError("timer pacing: burst must be a positive integer");
    }
    if (!Number.isFinite(limits.perSecond) || limits.perSecond <= 0) {
      throw new TypeError("timer pacing: perSecond must be a positive number");
    }
    this.#limits = limits;
  }

  /** `transitions` caused by the instance's timers happened at `now`. */
  charge(ref: string, transitions: number, now: number): void {
    const budget = this.#refilled(ref, now);
    budget.tokens -= transitions;
    // Re-inserted: the Map's order is the order budgets were last spent in.
    this.#budgets.delete(ref);
    this.#budgets.set(ref, budget);
    this.#bound(now);
  }

  /**
   * The earliest a timer the instance arms at `now` may be due, or undefined when its budget is
   * not spent (no pacing).
   */
  notBefore(ref: string, now: number): number | undefined {
    if (!this.#budgets.has(ref)) return undefined;
    const { tokens } = this.#refilled(ref, now);
    if (tokens >= 1) return undefined;
    return now + Math.ceil(((1 - tokens) / this.#limits.perSecond) * 1000);
  }

  /** How many instances have a budget remembered (for tests of the bound). */
  get tracked(): number {
    return this.#budgets.size;
  }

  #refilled(ref: string, now: number): Budget {
    const budget = this.#budgets.get(ref) ?? { tokens: this.#limits.burst, at: now };
    const elapsed = Math.max(0, now - budget.at);
    budget.tokens = Math.min(
      this.#limits.burst,
      budget.tokens + (elapsed / 1000) * this.#limits.perSecond,
    );
    budget.at = now;
    return budget;
  }

  /**
   * Forgets the least recently charged budgets that are full again by `now` (one is as good as
   * none: the instance starts full), so what is remembered follows the instances paced lately,
   * not every instance whose timers ever fired (deleted ones included); and past the cap, the
   * least recently charged whatever they hold.
   */
  #bound(now: number): void {
    const { burst, perSecond } = this.#limits;
    for (const [ref, { tokens, at }] of this.#budgets) {
      const full = tokens + (Math.max(0, now - at) / 1000) * perSecond >= burst;
      if (!full && this.#budgets.size <= MAX_TRACKED_INSTANCES) return;
      this.#budgets.delete(ref);
    }
  }
}
