// One writer per instance: tasks for the same key run one at a time, in arrival order; tasks for
// different keys run concurrently. Idle keys hold no memory.

/** Where an idle key's first task starts from (shared: it is never changed). */
const IDLE: Promise<void> = Promise.resolve();

export class KeyedMailbox {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every task queued before it for `key`; settles with its result. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? IDLE;
    const result = previous.then(task, task);
    // Settles once `task` has, whatever its outcome; the last one of a key leaves it idle.
    const done = () => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    const tail = result.then(done, done);
    this.tails.set(key, tail);
    return result;
  }

  /** Resolves when every task queued so far (for all keys) has finished. */
  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  get busyKeys(): number {
    return this.tails.size;
  }
}
