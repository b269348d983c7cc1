// Whether this node should be sent requests, for GET /healthz (load balancers, orchestrators):
// it is not shutting down, its database answers, and (on PostgreSQL) it hears the other nodes'
// change notices: a node that has not for longer than a short grace would serve stale realtime
// updates and caches, so it is taken out until its listener is back. The endpoint is public, so what it costs and
// what it tells are bounded: an outcome, either way, is remembered for a second and checks under
// way are shared (at most one trivial query a second however many ask); an answer comes within
// 2 s even when the database hangs (balancers give up on a check after a few seconds); and a
// failure says only that the database does not answer, its cause going to the log (once a
// minute at most), never to the caller.
import type { Logger } from "../engine/logger.js";
import { UnhealthyError } from "../errors.js";

/** How long an outcome of asking the database stands. */
const OUTCOME_STANDS_MS = 1_000;
/** How long a check waits for the database before it says it does not answer. */
const ANSWER_WITHIN_MS = 2_000;
/** At most one log line about failed checks this often. */
const LOG_EVERY_MS = 60_000;
/**
 * How long the node may be without its change-notice connection before it says so: a reconnect
 * (its waits grow to 5 s) does not flap the node in and out of its balancer's pool.
 */
export const NOT_LISTENING_GRACE_MS = 10_000;

type Outcome = { until: number; error?: UnhealthyError };

export class HealthCheck {
  #draining = false;
  #outcome: Outcome = { until: -Infinity };
  #asking: Promise<Outcome> | undefined;
  /** The query under way: one that outlived its check's wait is not asked again meanwhile. */
  #pinging: Promise<void> | undefined;
  #loggedAt = -Infinity;
  #notListeningLoggedAt = -Infinity;

  constructor(
    private readonly ping: () => Promise<void>,
    /** A monotonic clock, in milliseconds. */
    private readonly now: () => number,
    private readonly logger: Logger,
    /** Since when (on `now`'s clock) the node has not heard other nodes' changes, if it has not. */
    private readonly notListeningSince: () => number | undefined = () => undefined,
  ) {}

  /** From now on the node says it is shutting down: balancers take it out before it stops. */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves when the node is fit to serve; rejects with shutting-down or store-error. */
  async check(): Promise<void> {
    if (this.#draining) throw new UnhealthyError("shutting-down", "this node is shutting down");
    this.#checkListening();
    let outcome = this.#outcome;
    if (this.now() >= outcome.until) {
      this.#asking ??= this.#ask().finally(() => (this.#asking = undefined));
      outcome = await this.#asking;
    }
    if (outcome.error) throw outcome.error;
  }

  /** Asks no database: the listener knows when it lost its connection. */
  #checkListening(): void {
    const since = this.notListeningSince();
    if (since === undefined) return;
    const forMs = this.now() - since;
    if (forMs <= NOT_LISTENING_GRACE_MS) return;
    if (this.now() - this.#notListeningLoggedAt >= LOG_EVERY_MS) {
      this.#notListeningLoggedAt = this.now();
      this.logger.warn("health check: the change-notice connection is down", {
        forMs: Math.round(forMs),
      });
    }
    throw new UnhealthyError(
      "store-error",
      "this node does not hear the database's change notices",
    );
  }

  async #ask(): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)),
        ANSWER_WITHIN_MS,
      );
    });
    let error: UnhealthyError | undefined;
    try {
      this.#pinging ??= this.ping().finally(() => (this.#pinging = undefined));
      await Promise.race([this.#pinging, late]);
    } catch (cause) {
      error = new UnhealthyError("store-error", "the database does not answer");
      if (this.now() - this.#loggedAt >= LOG_EVERY_MS) {
        this.#loggedAt = this.now();
        this.logger.warn("health check: the database does not answer", { error: String(cause) });
      }
    } finally {
      clearTimeout(timer);
    }
    this.#outcome = { until: this.now() + OUTCOME_STANDS_MS, ...(error ? { error } : {}) };
    return this.#outcome;
  }
}
