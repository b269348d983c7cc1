// At most so many tasks at once: the others wait for a place, first come first served.

export class ConcurrencyLimit {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new TypeError(`a concurrency limit must be a positive integer, not ${limit}`);
    }
    this.#free = limit;
  }

  /** Runs `task` once a place is free, and frees it when the task has settled. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      // The place passes straight to the next in line, so none can jump the queue.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
