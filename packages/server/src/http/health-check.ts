// Whether this node should be sent requests, for GET /healthz (load balancers, orchestrators):
// it is not shutting down, and its database answers. A success is remembered for a second and
// checks under way are shared, so polling the endpoint (anyone may: it is public) costs the
// database at most one trivial query a second however many ask.
import { BackstateError } from "../errors.js";

/** How long a database that answered counts as answering. */
const ANSWERED_FOR_MS = 1_000;

export class HealthCheck {
  #draining = false;
  #answeredUntil = -Infinity;
  #pinging: Promise<void> | undefined;

  constructor(
    private readonly ping: () => Promise<void>,
    private readonly now: () => number,
  ) {}

  /** From now on the node says it is shutting down: balancers take it out before it stops. */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves when the node is fit to serve; rejects with shutting-down or store-error. */
  async check(): Promise<void> {
    if (this.#draining) throw new BackstateError("shutting-down", "this node is shutting down");
    if (this.now() < this.#answeredUntil) return;
    this.#pinging ??= this.ping()
      .then(() => {
        this.#answeredUntil = this.now() + ANSWERED_FOR_MS;
      })
      .finally(() => {
        this.#pinging = undefined;
      });
    await this.#pinging;
  }
}
