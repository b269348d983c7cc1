// The order in which a sandbox runs its calls: one at a time, first come first run, each from its
// own turn of the event loop; and the calls it hands back unrun when the pool recalls them.

/** A call waiting for its turn: `start(true)` gives it, `start(false)` hands it back unrun. */
type Turn = { readonly id: number; start(run: boolean): void };

export class CallTurns {
  /** Calls whose code is loaded, waiting for their turn to run (see next). */
  #queue: Turn[] = [];
  /** Whether a call has its turn, or one is about to be given (see end). */
  #running = false;
  /** Calls waiting for their version's code to load, by id; handing one back ends its wait. */
  readonly #awaitingCode = new Map<number, () => void>();

  /**
   * Resolves true when it is this call's turn, false if it is handed back first (see recall).
   * The call's code runs in the microtasks right after an immediate: call `end` once its answer
   * is written.
   */
  next(id: number): Promise<boolean> {
    return new Promise<boolean>((start) => {
      this.#queue.push({ id, start });
      if (!this.#running) {
        this.#running = true;
        setImmediate(this.#pump);
      }
    });
  }

  /**
   * Ends a call's turn once its answer is written. The next call runs from an immediate queued
   * after the writer's flush (batched-writer.ts uncorks from an immediate queued at the first
   * write), so the answer, and any pong read meanwhile, leave before the next call's code runs.
   */
  end(): void {
    if (this.#queue.length > 0) setImmediate(this.#pump);
    else this.#running = false;
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

  readonly #pump = (): void => {
    const turn = this.#queue.shift();
    // None is left when every queued call was handed back.
    if (turn === undefined) this.#running = false;
    else turn.start(true);
  };
}
