// External events waiting for their instance's mailbox. Events that queue up for one instance
// while it is busy are delivered together: one sandbox request and one group commit for many
// events, each still its own transition, in arrival order. This is what lets a hot instance go
// faster than one round trip and one fsync per event.
import type { JsonObject, MachineEvent } from "../runtime/adapter-protocol.js";
import type { KeyedMailbox } from "./mailbox.js";

export type Letter<T> = {
  event: MachineEvent;
  authContext: JsonObject;
  /** The key whose existence the event's commit requires (see TransitionCommit.requiresKeyId). */
  requiresKeyId?: string;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  /** Refused before its delivery (its key is gone): skipped if it comes round again. */
  refused?: true;
  /** Deliveries of this letter that lost a race with another node and must be tried again. */
  conflicts: number;
};

/**
 * Delivers (a prefix of) `letters`, settling each one it processed; returns how many it did.
 * Returning 0 asks for the same letters again (another node changed the instance meanwhile);
 * the delivery itself bounds how often, by each letter's `conflicts`.
 */
export type BatchDelivery<T> = (ref: string, letters: Array<Letter<T>>) => Promise<number>;

/** The most events one sandbox request carries. */
const MAX_BATCH = 64;

export class ExternalInbox<T> {
  private readonly open = new Map<string, Array<Letter<T>>>();

  constructor(
    private readonly mailbox: KeyedMailbox,
    private readonly deliver: BatchDelivery<T>,
  ) {}

  post(
    ref: string,
    event: MachineEvent,
    authContext: JsonObject,
    requiresKeyId?: string,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let letters = this.open.get(ref);
      if (!letters) {
        const batch: Array<Letter<T>> = [];
        letters = batch;
        this.open.set(ref, batch);
        void this.mailbox.run(ref, () => {
          this.close(ref, batch);
          return this.drain(ref, batch);
        });
      }
      letters.push({ event, authContext, requiresKeyId, resolve, reject, conflicts: 0 });
    });
  }

  /**
   * Later letters for `ref` go into a new batch: called when other work (a timer, a service
   * result) joins the mailbox, so no event overtakes it.
   */
  close(ref: string, batch?: Array<Letter<T>>): void {
    if (batch === undefined || this.open.get(ref) === batch) this.open.delete(ref);
  }

  private async drain(ref: string, letters: Array<Letter<T>>): Promise<void> {
    let rest = letters;
    while (rest.length > 0) {
      const chunk = rest.slice(0, MAX_BATCH);
      let processed = chunk.length;
      try {
        processed = await this.deliver(ref, chunk);
      } catch (err) {
        for (const letter of chunk) letter.reject(err);
      }
      rest = rest.slice(processed);
    }
  }
}
