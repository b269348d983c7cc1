// Read batching: point lookups made during one turn of the event loop (every request in flight
// authenticates its key and loads its instance) go to PostgreSQL as one statement, by key, instead
// of one round trip each. Each lookup is still linearizable: the statement is sent after every
// lookup in it was asked for, so it sees everything committed before any of them.

export type BatchRead<K, V> = {
  /** Looks the keys up (distinct, at most `maxBatch`); answers what was found, by `id` of key. */
  run(keys: K[]): Promise<Map<string, V>>;
  /** A key's identity: equal ids are looked up once. */
  id(key: K): string;
  maxBatch: number;
};

type Waiting<V> = { resolve: (value: V | undefined) => void; reject: (error: unknown) => void };

export class ReadBatcher<K, V> {
  readonly #read: BatchRead<K, V>;
  #pending = new Map<string, { key: K; waiting: Array<Waiting<V>> }>();
  #scheduled = false;

  constructor(read: BatchRead<K, V>) {
    this.#read = read;
  }

  load(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const id = this.#read.id(key);
      const entry = this.#pending.get(id);
      if (entry) entry.waiting.push({ resolve, reject });
      else this.#pending.set(id, { key, waiting: [{ resolve, reject }] });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: the lookups of every request handled in this turn join.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const all = [...this.#pending.values()];
    this.#pending = new Map();
    for (let start = 0; start < all.length; start += this.#read.maxBatch) {
      const batch = all.slice(start, start + this.#read.maxBatch);
      this.#read.run(batch.map((entry) => entry.key)).then(
        (found) => {
          for (const entry of batch) {
            const value = found.get(this.#read.id(entry.key));
            for (const waiting of entry.waiting) waiting.resolve(value);
          }
        },
        (error: unknown) => {
          for (const entry of batch) for (const waiting of entry.waiting) waiting.reject(error);
        },
      );
    }
  }
}
