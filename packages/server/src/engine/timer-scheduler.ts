// Fires durable timers: sleeps until the earliest due timer in the store, claims what is due and
// hands each to the engine. A failed delivery is retried later, up to a limit, then dropped.
import type { Store, TimerRecord } from "../store/store.js";
import type { Clock, TimerHandle } from "./clock.js";
import type { Logger } from "./logger.js";

export type TimerSchedulerOptions = {
  store: Store;
  clock: Clock;
  logger: Logger;
  deliver: (timer: TimerRecord) => Promise<void>;
  retryDelayMs: number;
  maxAttempts: number;
  /** How long a claim keeps other claimers off a timer (a crashed node's claims lapse after it). */
  leaseMs: number;
  /** Longest sleep between looks at the store, for timers armed by other nodes. */
  maxSleepMs?: number;
};

const CLAIM_BATCH = 256;
/**
 * Deliveries this node has under way at most. Without a bound, a poll claimed every due timer at
 * once (an audit's 1,000 timers all due together parked 445 MB of events in mailboxes); claims it
 * could not deliver within their lease ran out, and other pollers claimed and stepped them again.
 */
export const MAX_TIMER_DELIVERIES_IN_FLIGHT = 256;

export class TimerScheduler {
  private sleeping: { handle: TimerHandle; at: number } | undefined;
  private running = false;
  private stopped = true;
  private again = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: TimerSchedulerOptions) {}

  start(): void {
    this.stopped = false;
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeping?.handle.cancel();
    this.sleeping = undefined;
    await this.idle();
  }

  /** A timer due at `dueAt` (or an unknown time) was armed: look again if it is earlier. */
  wake(dueAt?: number): void {
    if (this.stopped) return;
    if (dueAt !== undefined && this.sleeping && this.sleeping.at <= dueAt) return;
    void this.poll();
  }

  /** Resolves when no poll or delivery is in progress. */
  async idle(): Promise<void> {
    while (this.running || this.inFlight.size > 0) {
      await Promise.all([...this.inFlight]);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async poll(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        do {
          this.again = false;
          const room = await this.roomToDeliver();
          if (this.stopped) break;
          const { store, clock } = this.options;
          const limit = Math.min(CLAIM_BATCH, room);
          const due = await store.claimDueTimers(clock.now(), limit, this.options.leaseMs);
          for (const timer of due) this.track(this.deliver(timer));
          if (due.length === limit) this.again = true;
        } while (this.again && !this.stopped);
        // Time may have moved on while we looked (a test clock jumps): look again if so.
      } while (!(await this.sleepUntilNextDue()));
    } catch (err) {
      this.options.logger.error("timer poll failed", { error: String(err) });
      this.sleep(this.options.clock.now() + 1000);
    } finally {
      this.running = false;
      // A wake-up that arrived after the last look (the sleep fired early in a jumpy test clock,
      // or a commit armed a timer) must not be lost.
      if (this.again && !this.stopped) void this.poll();
    }
  }

  /** Sleeps until the next due timer; false when one is already due, so the caller looks again. */
  private async sleepUntilNextDue(): Promise<boolean> {
    if (this.stopped) return true;
    const next = await this.options.store.nextTimerDue();
    const now = this.options.clock.now();
    if (next !== undefined && next <= now) return false;
    const cap = now + (this.options.maxSleepMs ?? 60_000);
    this.sleep(next === undefined ? cap : Math.min(next, cap));
    return true;
  }

  private sleep(at: number): void {
    this.sleeping?.handle.cancel();
    // A poll still looking at the store when stop() came must not arm a new sleep: it would
    // keep a stopped server's process alive until it fired.
    if (this.stopped) return;
    const handle = this.options.clock.setTimeout(() => {
      this.sleeping = undefined;
      void this.poll();
    }, at - this.options.clock.now());
    this.sleeping = { handle, at };
  }

  private async deliver(timer: TimerRecord): Promise<void> {
    try {
      await this.options.deliver(timer);
    } catch (err) {
      const attempts = timer.attempts + 1;
      const drop = attempts >= this.options.maxAttempts;
      const fields = { timerId: timer.id, key: timer.key, attempts, error: String(err) };
      if (drop) this.options.logger.warn("timer dropped after its last failed delivery", fields);
      else this.options.logger.info("timer delivery failed; will retry", fields);
      const retryAt = this.options.clock.now() + this.options.retryDelayMs;
      await this.options.store.recordTimerFailure(timer, retryAt, drop).catch((e: unknown) => {
        this.options.logger.error("could not record a timer failure", {
          timerId: timer.id,
          error: String(e),
        });
      });
      if (!drop) this.wake(retryAt);
    }
  }

  /** How many more deliveries may start, once at least one may (deliver() never rejects). */
  private async roomToDeliver(): Promise<number> {
    while (this.inFlight.size >= MAX_TIMER_DELIVERIES_IN_FLIGHT && !this.stopped) {
      await Promise.race(this.inFlight);
    }
    return MAX_TIMER_DELIVERIES_IN_FLIGHT - this.inFlight.size;
  }

  private track(delivery: Promise<void>): void {
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }
}
