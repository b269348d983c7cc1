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

export type GroupCommitOptions<T> = {
  /** The most items one transaction takes; the rest wait for the next batch. */
  maxBatchSize: number;
  /** Turns the cause of a failed batch into the error every caller in it receives. */
  batchError: (cause: unknown) => Error;
  /**
   * How many batches may run at once. Default 1. More suit a runner whose batches run elsewhere
   * (PostgreSQL): one batch's round trip then no longer holds up the items queued behind it. It
   * takes `keyOf`, so that one key's items never run in two batches at once.
   */
  maxConcurrentBatches?: number;
  /**
   * The key of what `item` writes (its instance). While other batches run, a batch takes no item
   * whose key is in one of them, or held back before it: such an item waits for a batch cut after
   * those have settled, in order, as it would with one batch at a time. So an item built on
   * another (the next commit of its instance) never runs beside it, and never before its
   * failure is known.
   */
  keyOf?: (item: T) => string;
};

type Waiter<T, R> = { item: T; resolve: (value: R) => void; reject: (error: Error) => void };

export class GroupCommitter<T, R> {
  readonly #run: BatchRunner<T, R>;
  readonly #options: GroupCommitOptions<T>;
  readonly #maxConcurrent: number;
  #queue: Waiter<T, R>[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  /** The batches running, each until its callers are told (or, when it failed, about to be). */
  readonly #running = new Set<Promise<void>>();
  /** The keys of the items of the batches running, each with how many such items there are. */
  readonly #runningKeys = new Map<string, number>();
  /**
   * A batch ended that the next must not follow in the same turn (see #ended): none is cut
   * before the next turn, even when another batch running meanwhile ends.
   */
  #holdUntilNextTurn = false;
  /** Items settling apart from their batch (Outcome "later"), until they have. */
  readonly #later = new Set<Promise<unknown>>();
  #batches = 0;

  constructor(run: BatchRunner<T, R>, options: GroupCommitOptions<T>) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) {
      throw new TypeError("maxBatchSize must be a positive integer");
    }
    this.#maxConcurrent = options.maxConcurrentBatches ?? 1;
    if (!Number.isInteger(this.#maxConcurrent) || this.#maxConcurrent < 1) {
      throw new TypeError("maxConcurrentBatches must be a positive integer");
    }
    if (this.#maxConcurrent > 1 && options.keyOf === undefined) {
      throw new TypeError("more than one batch at once needs keyOf");
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
      if (this.#running.size > 0) await Promise.all([...this.#running]);
      else if (this.#queue.length > 0) await this.#flush();
      else if (this.#later.size > 0) await Promise.allSettled([...this.#later]);
      else break;
    }
    this.#unschedule();
  }

  #schedule(): void {
    // As many batches at once as allowed: the last of them starts the next when it ends
    // (#ended), so items arriving meanwhile form the next batch.
    if (this.#scheduled !== undefined || this.#running.size >= this.#maxConcurrent) return;
    // setImmediate, not a microtask: every caller of this turn of the event loop (and of the
    // promise continuations it triggers) gets to enqueue before the batch is cut.
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.#holdUntilNextTurn = false;
      void this.#flush();
    });
  }

  #unschedule(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
  }

  #flush(): Promise<void> {
    this.#unschedule();
    const batch = this.#cut();
    if (batch.length === 0) return Promise.resolve();
    // Marked running before it starts: a runner that throws synchronously ends it (#ended)
    // before #runBatch returns.
    let ended!: () => void;
    const running = new Promise<void>((resolve) => (ended = resolve));
    this.#running.add(running);
    this.#countRunning(batch, +1);
    void this.#runBatch(batch, running).finally(ended);
    return running;
  }

  /** Takes the next batch off the queue: in order, apart from items that must wait (see keyOf). */
  #cut(): Waiter<T, R>[] {
    const max = this.#options.maxBatchSize;
    if (this.#running.size === 0) return this.#queue.splice(0, max);
    const keyOf = this.#options.keyOf!;
    const batch: Waiter<T, R>[] = [];
    const waiting: Waiter<T, R>[] = [];
    const held = new Set<string>();
    for (const waiter of this.#queue) {
      const key = keyOf(waiter.item);
      if (batch.length < max && !this.#runningKeys.has(key) && !held.has(key)) batch.push(waiter);
      else {
        waiting.push(waiter);
        held.add(key);
      }
    }
    this.#queue = waiting;
    return batch;
  }

  #countRunning(batch: readonly Waiter<T, R>[], change: 1 | -1): void {
    const keyOf = this.#options.keyOf;
    if (keyOf === undefined) return;
    for (const { item } of batch) {
      const key = keyOf(item);
      const count = (this.#runningKeys.get(key) ?? 0) + change;
      if (count === 0) this.#runningKeys.delete(key);
      else this.#runningKeys.set(key, count);
    }
  }

  /**
   * A batch is over. After a transaction that ran elsewhere (the runner answered a promise), what
   * queued meanwhile goes at once, before that batch's callers are told: telling them runs their
   * continuations (answers to write, further steps to start), which on a busy node takes about
   * as long as the next transaction, and the database works on it meanwhile. A synchronous
   * runner (SQLite) or a failed batch gets no such overlap: the next batch waits for the next
   * turn, so a backlog never runs without yielding to the event loop, and the callers of a failed
   * batch hear of it before the next batch is cut (commit-chains.ts relies on that), however
   * many other batches end meanwhile.
   */
  #ended(batch: Waiter<T, R>[], running: Promise<void>, startNextNow: boolean): void {
    this.#running.delete(running);
    this.#countRunning(batch, -1);
    // Another batch still running may end before this one's callers are told: it must not cut
    // the next batch (with items built on this one's) before then either.
    if (!startNextNow) this.#holdUntilNextTurn = true;
    if (this.#queue.length === 0) return;
    if (startNextNow && !this.#holdUntilNextTurn) void this.#flush();
    else this.#schedule();
  }

  async #runBatch(batch: Waiter<T, R>[], running: Promise<void>): Promise<void> {
    this.#batches++;
    let outcomes: Outcome<R>[];
    let ranElsewhere: boolean;
    try {
      const running = this.#run(batch.map((waiter) => waiter.item));
      ranElsewhere = running instanceof Promise;
      outcomes = await running;
    } catch (cause) {
      this.#ended(batch, running, false);
      return this.#rejectAll(batch, cause);
    }
    if (!Array.isArray(outcomes)) {
      this.#ended(batch, running, false);
      return this.#rejectAll(batch, new Error("the batch runner answered no outcomes"));
    }
    this.#ended(batch, running, ranElsewhere);
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
