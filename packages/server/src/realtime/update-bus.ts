// The update bus: how committed instance updates reach whoever watches them (the realtime hub),
// whichever node committed them. This node's updates are published with their record; another
// node's arrive as a key and a sequence, to be loaded from the store by a listener that cares.
// Two implementations: LocalUpdateBus (one node: SQLite, or tests) and PostgresUpdateBus
// (update-bus-postgres.ts: LISTEN/NOTIFY on the shared database).
import type { InstanceUpdate } from "../engine/engine.js";
import type { Logger } from "../engine/logger.js";
import type { InstanceKey } from "../store/store.js";

export type BusUpdate =
  /** This node committed a transition (with its record), or deleted an instance. */
  | InstanceUpdate
  /** Another node committed a transition: the instance is at `sequence` or later. */
  | { kind: "changed"; key: InstanceKey; sequence: number }
  /**
   * Another node paused the instance (its row `instanceId`, when the notice names it) at
   * `sequence`: the services this node runs for it that its steps up to then started are to stop
   * now.
   */
  | { kind: "paused"; key: InstanceKey; sequence: number; instanceId?: number }
  /** Another node armed a timer due at `dueAt`: this node's scheduler may want to look sooner. */
  | { kind: "timers-armed"; dueAt: number }
  /**
   * Updates from other nodes may have been missed (the bus lost its connection meanwhile, or a
   * change could not be named): reload whatever is watched, and look for due timers.
   */
  | { kind: "resync" };

export interface UpdateBus {
  /**
   * Hands over an update this node committed: subscribers on this node get it at once. (Other
   * nodes hear of it through the bus's transport: for PostgreSQL, the commit's own NOTIFY.)
   */
  publish(update: InstanceUpdate): void;
  /** Calls `listener` with every update, this node's and other nodes'; returns the unsubscribe. */
  subscribe(listener: (update: BusUpdate) => void): () => void;
  /**
   * Since when (a monotonic time, in milliseconds) the bus has not been hearing other nodes'
   * updates, or undefined while it hears them (always, for a single node).
   */
  notListeningSince(): number | undefined;
  close(): Promise<void>;
}

/** The bus of a single node: what is published is what subscribers get. */
export class LocalUpdateBus implements UpdateBus {
  readonly #listeners = new Set<(update: BusUpdate) => void>();

  constructor(private readonly logger: Logger) {}

  publish(update: InstanceUpdate): void {
    this.emit(update);
  }

  subscribe(listener: (update: BusUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  notListeningSince(): number | undefined {
    return undefined;
  }

  close(): Promise<void> {
    this.#listeners.clear();
    return Promise.resolve();
  }

  /** Hands `update` to every subscriber; one that throws is logged and the others still run. */
  protected emit(update: BusUpdate): void {
    for (const listener of this.#listeners) {
      try {
        listener(update);
      } catch (err) {
        this.logger.error("an update bus listener failed", { error: String(err) });
      }
    }
  }
}
