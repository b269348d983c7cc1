// Group commit for any adapter: writes queued by many callers run together in one database
// transaction per batch, so durability costs one sync per batch instead of one per write.

/**
 * What one item of a batch came to: its value, or the error that failed it (and only it); or, for
 * an item the batch could not settle and finishes apart (after the batch, without holding up the
 * batches that follow), the promise of either.
 */
export type Outcome<R> =
  { ok: true; value: R } | { ok: false; error: Error } | { ok: "later"; settles: Promise<R> };

/**
 * Runs one batch in one transaction and returns one outcome per item, in order. Throws (or
 * rejects) when the transaction as a whole failed: then every item of the batch fails.
 */
export type BatchRunner<T, R> = (batch: readonly T[]) => Outcome<R>[] | Promise<Outcome<R>[]>;

export type GroupCommitOptions = {
  /** The most items one transaction takes; the rest wait for the next batch. */
  maxBatchSize: number;
  /** Turns the cause of a failed batch into the error every caller in it receives. */
  batchError: (cause: unknown) => Error;
};

type Waiter<T, R> = { item: T; resolve: (value: R) => void; reject: (error: Error) => void };

export class GroupCommitter<T, R> {
  readonly #run: BatchRunner<T, R>;
  readonly #options: GroupCommitOptions;
  #queue: Waiter<T, R>[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #flushing: Promise<void> | undefined;
  /** Items settling apart from their batch (Outcome "later"), until they have. */
  readonly #later = new Set<Promise<unknown>>();
  #batches = 0;

  constructor(run: BatchRunner<T, R>, options: GroupCommitOptions) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) {
      throw new TypeError("maxBatchSize must be a positive integer");
    }
    this.#run = run;
    this.#options = options;
  }

  /** How many batches (transactions) have been run so far. */
  get batches(): number {
    return this.#batches;
  }

  /** Queues `item`; settles once the transaction holding it has committed, or with its error. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Runs everything queued now, without waiting for the next turn of the event loop, and waits
   * until every item has settled (those settling apart from their batch too).
   */
  async drain(): Promise<void> {
    for (;;) {
      if (this.#flushing !== undefined) await this.#flushing;
      else if (this.#queue.length > 0) await this.#flush();
      else if (this.#later.size > 0) await Promise.allSettled([...this.#later]);
      else break;
    }
    this.#unschedule();
  }

  #schedule(): void {
    // One flush at a time: a flush that is running starts the next when it ends (#ended), so items
    // arriving meanwhile form the next batch instead of joining a transaction already under way.
    if (this.#scheduled !== undefined || this.#flushing !== undefined) return;
    // setImmediate, not a microtask: every caller of this turn of the event loop (and of the
    // promise continuations it triggers) gets to enqueue before the batch is cut.
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      void this.#flush();
    });
  }

  #unschedule(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
  }

  #flush(): Promise<void> {
    this.#unschedule();
    const batch = this.#queue.splice(0, this.#options.maxBatchSize);
    if (batch.length === 0) return Promise.resolve();
    // Marked in flight before it starts: a runner that throws synchronously ends it (#ended)
    // before #runBatch returns.
    let ended!: () => void;
    const flushing = new Promise<void>((resolve) => (ended = resolve));
    this.#flushing = flushing;
    void this.#runBatch(batch).finally(ended);
    return flushing;
  }

  /**
   * The batch in flight is over. After a transaction that ran elsewhere (the runner answered a
   * promise), what queued meanwhile goes at once, before that batch's callers are told: telling
   * them runs their continuations (answers to write, further steps to start), which on a busy
   * node takes about as long as the next transaction, and the database works on it meanwhile. A
   * synchronous runner (SQLite) or a failed batch gets no such overlap: the next batch waits for
   * the next turn, so a backlog never runs without yielding to the event loop, and the callers of
   * a failed batch hear of it before the next batch is cut (commit-chains.ts relies on that).
   */
  #ended(startNextNow: boolean): void {
    this.#flushing = undefined;
    if (this.#queue.length === 0) return;
    if (startNextNow) void this.#flush();
    else this.#schedule();
  }

  async #runBatch(batch: Waiter<T, R>[]): Promise<void> {
    this.#batches++;
    let outcomes: Outcome<R>[];
    let ranElsewhere: boolean;
    try {
      const running = this.#run(batch.map((waiter) => waiter.item));
      ranElsewhere = running instanceof Promise;
      outcomes = await running;
    } catch (cause) {
      this.#ended(false);
      return this.#rejectAll(batch, cause);
    }
    if (!Array.isArray(outcomes)) {
      this.#ended(false);
      return this.#rejectAll(batch, new Error("the batch runner answered no outcomes"));
    }
    this.#ended(ranElsewhere);
    batch.forEach((waiter, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) waiter.reject(new Error("batch runner returned too few outcomes"));
      else if (outcome.ok === true) waiter.resolve(outcome.value);
      else if (outcome.ok === false) waiter.reject(outcome.error);
      else this.#settleLater(waiter, outcome.settles);
    });
  }

  #settleLater(waiter: Waiter<T, R>, settles: Promise<R>): void {
    const settled = settles.then(waiter.resolve, waiter.reject);
    this.#later.add(settled);
    void settled.finally(() => this.#later.delete(settled));
  }

  #rejectAll(batch: Waiter<T, R>[], cause: unknown): void {
    let error: Error;
    try {
      error = this.#options.batchError(cause);
    } catch (failed) {
      error = failed instanceof Error ? failed : new Error(String(failed));
    }
    for (const waiter of batch) waiter.reject(error);
  }
}
