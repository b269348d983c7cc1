// The order in which a sandbox runs its calls: one at a time, first come first run; and the calls
// it hands back unrun when the pool recalls them.
//
// Calls queued together run back to back, each answer sent before the next call starts, for up
// to RUN_MS; then the rest wait for the next turn of the event loop, in which the messages read
// meanwhile (pings, recalls, more calls) are handled. A turn of the event loop for each call cost
// the process a poll and an immediate per call, about a tenth of its CPU under load.
//
// Either way, a call starts only once every answer before it has left for the pool: should it
// hang, the pool has had those answers, and blames it alone (its time budget runs from the last
// answer it read; see sandbox-process.ts).

/** How long calls may follow one another before the event loop gets a turn. */
export const RUN_MS = 2;

/** A call waiting for its turn: `start(true)` gives it, `start(false)` hands it back unrun. */
type Turn = { readonly id: number; start(run: boolean): void };

export type CallTurnsOptions = {
  /**
   * Sends the answers written so far, before a call that would follow another at once; false
   * when the pipe has not taken them all, and the next call waits for a turn of the event loop.
   */
  flush?: () => boolean;
  /**
   * Calls `then` once every answer written so far has left (the writer's afterWritten). Default:
   * at once.
   */
  afterWritten?: (then: () => void) => void;
  /** A monotonic clock in milliseconds (tests set it). Default performance.now. */
  now?: () => number;
};

export class CallTurns {
  /** Calls whose code is loaded, waiting for their turn to run (see next). */
  #queue: Turn[] = [];
  /** Whether a call has its turn, or one is about to be given (see end). */
  #running = false;
  /** Calls waiting for their version's code to load, by id; handing one back ends its wait. */
  readonly #awaitingCode = new Map<number, () => void>();
  /** When the current run of back-to-back calls began (see end). */
  #runStartedAt = 0;
  readonly #flush: () => boolean;
  readonly #afterWritten: (then: () => void) => void;
  readonly #now: () => number;

  constructor(options: CallTurnsOptions = {}) {
    this.#flush = options.flush ?? (() => true);
    this.#afterWritten = options.afterWritten ?? ((then) => then());
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Resolves true when it is this call's turn, false if it is handed back first (see recall).
   * The call's code runs in the microtasks right after an immediate, or right after the call
   * before it: call `end` once its answer is written.
   */
  next(id: number): Promise<boolean> {
    return new Promise<boolean>((start) => {
      this.#queue.push({ id, start });
      if (!this.#running) {
        this.#running = true;
        setImmediate(this.#startRun);
      }
    });
  }

  /**
   * Ends a call's turn once its answer is written. Within RUN_MS of the run's start the next call
   * starts at once, if `flush` has sent the answer. Otherwise it runs from an immediate queued
   * after the writer's own (batched-writer.ts uncorks from an immediate queued at the first
   * write), and once the stream has written every answer: a write waiting for the pipe (the pool
   * reading behind, or an answer larger than the pipe holds) finishes only in later turns, and
   * until then the answers after it wait in the stream's buffer, lost with them if a call hangs.
   */
  end(): void {
    if (this.#queue.length === 0) this.#running = false;
    else if (this.#now() - this.#runStartedAt < RUN_MS && this.#flush()) this.#pump();
    else this.#afterWritten(() => setImmediate(this.#startRun));
  }

  /** What `loading` resolves to (the version's handler); undefined if the call is handed back. */
  whileLoading<T>(id: number, loading: Promise<T>): Promise<T | undefined> {
    const handedBack = new Promise<undefined>((resolve) => {
      this.#awaitingCode.set(id, () => resolve(undefined));
    });
    const loaded = Promise.race([loading, handedBack]);
    void loaded.finally(() => this.#awaitingCode.delete(id)).catch(() => {});
    return loaded;
  }

  /**
   * Hands back the calls named that have not started (queued, or waiting for their code), and
   * answers their ids. Calls that started, ended or are unknown are not handed back.
   */
  recall(ids: readonly number[]): number[] {
    const asked = new Set(ids);
    const handedBack: number[] = [];
    const kept: Turn[] = [];
    for (const turn of this.#queue) {
      if (!asked.has(turn.id)) kept.push(turn);
      else {
        handedBack.push(turn.id);
        turn.start(false);
      }
    }
    this.#queue = kept;
    for (const [id, handBack] of this.#awaitingCode) {
      if (!asked.has(id)) continue;
      this.#awaitingCode.delete(id);
      handedBack.push(id);
      handBack();
    }
    return handedBack;
  }

  readonly #startRun = (): void => {
    this.#runStartedAt = this.#now();
    this.#pump();
  };

  readonly #pump = (): void => {
    const turn = this.#queue.shift();
    // None is left when every queued call was handed back.
    if (turn === undefined) this.#running = false;
    else turn.start(true);
  };
}
