// Removes the history of deleted instances after their delete, one bounded chunk at a time, so a
// long history never holds the store (on SQLite, the whole node) for more than one chunk. The
// queue is in the store: a purge cut short by a stop, crash or restart goes on at the next start.
import type { Store } from "../store/store.js";
import type { Clock, TimerHandle } from "./clock.js";
import type { Logger } from "./logger.js";

/**
 * History rows one chunk deletes at most: the one place this is decided. A few milliseconds of
 * SQLite's time (deleting 1,000,000 rows at once took 1.5 to 2.5 s), and few enough chunks that a
 * long history is still gone within seconds.
 */
export const HISTORY_PURGE_CHUNK_ROWS = 2_000;

/**
 * How long an idle purger waits before it looks at the queue again: for purges this node did not
 * queue (another node's, which that node's crash left unfinished) and after a failed chunk.
 */
const IDLE_LOOK_MS = 60_000;

export type HistoryPurgerOptions = {
  store: Pick<Store, "purgeDeletedHistory">;
  clock: Clock;
  logger: Logger;
};

export class HistoryPurger {
  private stopped = true;
  private again = false;
  private running: Promise<void> | undefined;
  private sleeping: TimerHandle | undefined;

  constructor(private readonly options: HistoryPurgerOptions) {}

  /** Starts purging what the queue holds (including what an earlier run left). */
  start(): void {
    this.stopped = false;
    this.wake();
  }

  /** An instance was deleted: its history is queued, purge it now. */
  wake(): void {
    if (this.stopped) return;
    this.sleeping?.cancel();
    this.sleeping = undefined;
    if (this.running) {
      // A purge running now may have just found the queue empty: it looks once more.
      this.again = true;
      return;
    }
    this.running = this.purge().finally(() => {
      this.running = undefined;
      // A wake that came after the purge's last look, before this: it was not looked at.
      if (this.again) this.wake();
    });
  }

  /** Stops after the chunk in progress, if any (one short transaction); the rest waits in the queue. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeping?.cancel();
    this.sleeping = undefined;
    await this.running;
  }

  private async purge(): Promise<void> {
    const { store, logger, clock } = this.options;
    do {
      this.again = false;
      while (!this.stopped) {
        let rows: number;
        try {
          rows = await store.purgeDeletedHistory(HISTORY_PURGE_CHUNK_ROWS);
        } catch (error) {
          // Left in the queue: the next look (or the next delete) tries again.
          logger.warn("could not purge the history of deleted instances", {
            error: String(error),
          });
          break;
        }
        if (rows === 0) break;
        // The event loop's turn between chunks: requests and commits are not held up for the
        // whole history, only for one chunk at a time.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } while (this.again && !this.stopped);
    // A stop that came while a chunk ran must not arm a sleep: it would keep the process alive.
    if (this.stopped) return;
    this.sleeping = clock.setTimeout(() => {
      this.sleeping = undefined;
      this.wake();
    }, IDLE_LOOK_MS);
  }
}
