// The delivery of the external events posted to an instance (a client's), which its inbox hands
// over in batches inside the instance's mailbox: owed error events first, then the events stepped
// in one batch, then what the last one sent its machine itself; the letters a batch left standing
// on a stale state are delivered again, and each one alone when a runaway step took the sandbox
// down with the batch.
import { ConflictError, SigningKeyGoneError } from "../errors.js";
import { isSandboxLoss } from "../runtime/sandbox-death.js";
import type { InstanceKey, InstanceRecord, Store } from "../store/store.js";
import { MAX_CONFLICT_RETRIES, pauseAfterLosses } from "./conflict-retries.js";
import type { Letter } from "./external-inbox.js";
import { unchanged, type InstanceCache } from "./instance-cache.js";
import type { LostServices } from "./lost-services.js";
import {
  instanceKeyOfRef,
  type BatchOutcome,
  type Committed,
  type StepCommitter,
} from "./step-committer.js";

export class BatchDelivery {
  constructor(
    private readonly deps: {
      store: Store;
      cache: InstanceCache;
      committer: StepCommitter;
      lostServices: LostServices;
      /**
       * Runs `work` on the record the instance's last write on this node left, else on the stored
       * one, and again on a fresh load when the instance really moved on (the engine's).
       */
      retryingConflicts: <T>(
        key: InstanceKey,
        work: (base: { instance: InstanceRecord; remembered: boolean }) => Promise<T>,
      ) => Promise<T>;
      /**
       * What every delivery of an outside event starts with: the instance, unless paused, with the
       * error events owed for its lost services delivered first (the engine's).
       */
      prepareDelivery: (
        instance: InstanceRecord,
        lost?: readonly string[],
      ) => Promise<InstanceRecord>;
      /** Steps the events a committed step sent its machine itself; resolves with the last commit. */
      processSelfEvents: (committed: Committed) => Promise<Committed>;
    },
  ) {}

  /**
   * Delivers posted external events (inside the instance's mailbox): owed error events first,
   * then the events in one batch, then whatever the last one sent its machine itself.
   */
  async deliverBatch(ref: string, chunk: Array<Letter<Committed>>): Promise<number> {
    const key = instanceKeyOfRef(ref);
    const { orgId } = key;
    let letters = chunk.filter((letter) => letter.refused !== true);
    const { instance, confirmed } = await this.deps.retryingConflicts(key, async (base) => {
      // Lost services' error events commit before any letter's own commit, which is where a key
      // verified from memory is checked: such a letter may set them off only once its key is read.
      // Asked once: a lease running out in between must not let error events through unchecked.
      const lost = await this.deps.lostServices.lostOf(base.instance);
      if (lost.length > 0) letters = await this.withoutGoneKeys(orgId, letters);
      if (letters.length === 0) return { instance: base.instance, confirmed: true };
      const prepared = await this.deps.prepareDelivery(base.instance, lost);
      // Lost services' error events (or their drop) written on a remembered record confirm it.
      return { instance: prepared, confirmed: !base.remembered || prepared !== base.instance };
    });
    if (letters.length === 0) return chunk.length;
    let batch: BatchOutcome;
    try {
      batch = await this.deps.committer.transitionBatch(instance, letters);
    } catch (err) {
      // One event's runaway step (a loop, a memory bomb) took the sandbox down with the whole
      // batch before anything was committed: each event goes again on its own, so only that
      // one fails, not every other caller's event queued with it.
      if (letters.length === 1 || !isSandboxLoss(err)) throw err;
      await this.deliverOneByOne(ref, letters);
      return chunk.length;
    }
    const { outcomes } = batch;
    // Another node changed this instance since the record the batch built on: those letters are
    // delivered again, on a fresh load, a bounded number of times.
    const conflict = await this.redeliveryFrom(key, instance, confirmed, batch);
    const settled = conflict >= 0 && conflict < batch.processed ? conflict : batch.processed;
    let processed = settled;
    if (settled === conflict) {
      const losses = ++letters[conflict]!.conflicts;
      if (losses > MAX_CONFLICT_RETRIES) {
        letters[conflict]!.reject(outcomes[conflict]);
        processed = conflict + 1;
      } else await pauseAfterLosses(losses);
    }
    for (let i = 0; i < settled; i++) {
      const outcome = outcomes[i];
      const letter = letters[i]!;
      if (outcome instanceof Error || outcome === undefined) {
        letter.reject(outcome ?? new Error("the batch gave this event no outcome"));
      } else if (outcome.step.selfEvents.length > 0) {
        // Only the last processed step can have sent itself events; they come before the rest.
        await this.deps.processSelfEvents(outcome).then(letter.resolve, letter.reject);
      } else letter.resolve(outcome);
    }
    // Letters refused for their key are settled too: count in the chunk the inbox gave.
    return processed === letters.length ? chunk.length : chunk.indexOf(letters[processed]!);
  }

  /** Delivers each letter alone (see deliverBatch), settling every one. */
  private async deliverOneByOne(ref: string, letters: Array<Letter<Committed>>): Promise<void> {
    for (const letter of letters) {
      try {
        // 0 asks for the letter again: another node changed the instance (bounded per letter).
        while ((await this.deliverBatch(ref, [letter])) === 0);
      } catch (err) {
        letter.reject(err);
      }
    }
  }

  /** `letters` without those whose key, verified from memory, is gone: refused here, with 401. */
  private async withoutGoneKeys(
    orgId: string,
    letters: Array<Letter<Committed>>,
  ): Promise<Array<Letter<Committed>>> {
    const gone = new Set<string>();
    const keyIds = new Set(letters.map((letter) => letter.requiresKeyId));
    for (const keyId of keyIds) {
      if (keyId !== undefined && (await this.deps.store.getKey(keyId))?.orgId !== orgId)
        gone.add(keyId);
    }
    if (gone.size === 0) return letters;
    return letters.filter((letter) => {
      if (letter.requiresKeyId === undefined || !gone.has(letter.requiresKeyId)) return true;
      letter.refused = true;
      letter.reject(new SigningKeyGoneError(letter.requiresKeyId));
      return false;
    });
  }

  /**
   * Where a batch's letters must be delivered again (-1: none). From the first commit that found
   * the instance changed, every step stood on a stale state. On a remembered record, the steps
   * refused before the first commit was tried stood on it too: when that commit found the
   * instance changed, they go again with it; when there was none, the store must show the
   * record current for their refusals to stand. (A letter whose commit was tried and failed
   * otherwise never goes again: it may have been written.)
   */
  private async redeliveryFrom(
    key: InstanceKey,
    base: InstanceRecord,
    confirmed: boolean,
    batch: BatchOutcome,
  ): Promise<number> {
    const { outcomes, processed } = batch;
    const from = await this.staleFrom(key, base, confirmed, batch);
    // The sandbox stepped each event on the one before: after a step whose commit was refused
    // for its key (never written), the next refusals stood on a state the instance never had.
    const keyGone = outcomes
      .slice(0, processed)
      .findIndex((outcome) => outcome instanceof SigningKeyGoneError);
    if (keyGone < 0 || keyGone + 1 >= processed) return from;
    return from >= 0 ? Math.min(from, keyGone + 1) : keyGone + 1;
  }

  /** redeliveryFrom, as far as the record the batch started from decides it. */
  private async staleFrom(
    key: InstanceKey,
    base: InstanceRecord,
    confirmed: boolean,
    batch: BatchOutcome,
  ): Promise<number> {
    const { outcomes, processed, firstCommit } = batch;
    const conflict = outcomes
      .slice(0, processed)
      .findIndex((outcome) => outcome instanceof ConflictError);
    if (confirmed || firstCommit === 0) return conflict;
    // A commit refused for its key was refused before its row was looked at: it tells nothing
    // about the record, so the refusals before it are checked as if no commit had been tried.
    const told = firstCommit > 0 && !(outcomes[firstCommit] instanceof SigningKeyGoneError);
    if (told) return firstCommit === conflict ? 0 : conflict;
    const stored = await this.deps.store.loadInstance(key);
    // Unchanged: the refusals stand, and what failed after the key's refusal goes again.
    if (stored !== undefined && unchanged(base, stored)) return conflict;
    this.deps.cache.forget(key);
    return 0;
  }
}
