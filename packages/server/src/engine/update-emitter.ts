// Fans committed instance updates out to listeners (the realtime hub, later the cross-node bus).
// A listener that throws is logged and skipped: it must never fail the commit that triggered it.
import type { InstanceKey, InstanceRecord } from "../store/store.js";
import type { InstanceState } from "./instance-state.js";
import type { Logger } from "./logger.js";
import type { ReadDecisions } from "./read-audience.js";

export type InstanceUpdate =
  /**
   * `state`: the record's public State; `reads`: allowRead's answers on it for the readers
   * asked with its step, if any.
   */
  | { kind: "state"; instance: InstanceRecord; state: InstanceState; reads?: ReadDecisions }
  /**
   * `instanceId`: the deleted row, when another node's notice names it (this node's own deletes
   * stopped the row's services already, and tell no id).
   */
  | { kind: "deleted"; key: InstanceKey; instanceId?: number };

export class UpdateEmitter {
  private readonly listeners = new Set<(update: InstanceUpdate) => void>();

  constructor(private readonly logger: Logger) {}

  add(listener: (update: InstanceUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(update: InstanceUpdate): void {
    for (const listener of this.listeners) {
      try {
        listener(update);
      } catch (err) {
        this.logger.error("an instance update listener failed", { error: String(err) });
      }
    }
  }
}
