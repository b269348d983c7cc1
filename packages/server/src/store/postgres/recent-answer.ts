// When the database last answered this node. Under load every pooled connection can be busy for
// longer than a health check may wait, and a check queued behind them would call a node that
// serves at full speed unhealthy (so a balancer takes out the busiest nodes first). An answer the
// database gave a moment ago, or gives while the check waits, to any statement, is proof enough
// that it answers. Only real answers count: a statement that failed, timed out or was never sent
// (a batch whose every commit was refused before it) is no sign of a live database.
import { performance } from "node:perf_hooks";

export class RecentAnswer {
  #at = -Infinity;
  #next: { promise: Promise<void>; resolve: () => void } | undefined;

  /** The database just answered a statement. */
  answered(): void {
    this.#at = performance.now();
    this.#next?.resolve();
    this.#next = undefined;
  }

  /** Whether the database answered within the last `ms` milliseconds. */
  within(ms: number): boolean {
    return performance.now() - this.#at < ms;
  }

  /** Resolves at the database's next answer (to anyone's statement). */
  next(): Promise<void> {
    if (this.#next === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.#next = { promise, resolve };
    }
    return this.#next.promise;
  }

  /** Resolves to what `statement` resolves to, noting the answer once it has come. */
  async noted<T>(statement: Promise<T>): Promise<T> {
    const result = await statement;
    this.answered();
    return result;
  }
}
