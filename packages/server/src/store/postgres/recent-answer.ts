// When the database last answered this node. Under load every pooled connection can be busy for
// longer than a health check may wait, and a check queued behind them would call a node that
// serves at full speed unhealthy (so a balancer takes out the busiest nodes first). An answer the
// database gave a moment ago, to any statement, is proof enough that it answers, and asks nothing
// of the pool.
import { performance } from "node:perf_hooks";

export class RecentAnswer {
  #at = -Infinity;

  /** The database just answered a statement (whatever its result: it answered). */
  answered(): void {
    this.#at = performance.now();
  }

  /** Whether the database answered within the last `ms` milliseconds. */
  within(ms: number): boolean {
    return performance.now() - this.#at < ms;
  }

  /** Resolves to what `work` resolves to, noting the answer on the way. */
  async noted<T>(work: Promise<T>): Promise<T> {
    const result = await work;
    this.answered();
    return result;
  }
}
