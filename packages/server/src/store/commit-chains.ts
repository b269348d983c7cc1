// Pipelined commits of one instance, for any adapter. The engine submits the commit of each step
// of a batch before the one it was built on has been written. When that one fails (another node
// or process wrote the instance first), the commits built on it must fail too, without being
// tried: their sequence check could pass by coincidence, since the other writer's commit gave the
// instance the very sequence they expect, and they would land on its state carrying steps
// computed from the failed one's.
import type { GroupCommitter } from "./group-commit.js";
import type { CommitResult, TransitionCommit } from "./store.js";

/**
 * A commit as queued for a batch. `builtOn` is the earlier commit of the same instance it was
 * built on, when that one was still queued at submission; `failed` tells its successors whether
 * it was written. The runner sets it for a commit it refuses (a successor may be in the same
 * batch); submit() sets it when the commit's promise rejects, which is how a batch that failed
 * as a whole tells: before the next batch is cut, since the committer cuts a batch that follows
 * a failed one in a later turn.
 */
export type QueuedCommit = {
  commit: TransitionCommit;
  builtOn: QueuedCommit | undefined;
  failed: boolean;
  /**
   * Set by a runner while it finishes the commit after its batch (PostgreSQL, for a row another
   * transaction held), until `failed` tells its fate: a successor cut into a batch meanwhile must
   * be finished after it, not tried on a row its predecessor has not yet written.
   */
  deferred?: boolean;
};

/** Links each commit submitted to the queued commit of its instance it was built on. */
export class CommitChains {
  /** Per instance, the last commit submitted while it is still queued. */
  readonly #last = new Map<string, QueuedCommit>();

  /**
   * Submits `commit` to `committer`, linked to the queued commit of its instance it was built on:
   * an event commit expecting the sequence that the instance's queued event commit will write
   * (the engine pipelines only the events of a batch; a create never is). Settles as the
   * committer settles it. Queued synchronously, so a close() that follows finds it in the queue.
   */
  submit(
    committer: GroupCommitter<QueuedCommit, CommitResult>,
    commit: TransitionCommit,
  ): Promise<CommitResult> {
    const { orgId, machineName, instanceName } = commit.instance;
    const ref = `${orgId}/${machineName}/${instanceName}`;
    const last = this.#last.get(ref);
    const builtOn =
      last !== undefined &&
      last.commit.kind === "event" &&
      commit.kind === "event" &&
      last.commit.expectedSequence + 1 === commit.expectedSequence
        ? last
        : undefined;
    const queued: QueuedCommit = { commit, builtOn, failed: false };
    this.#last.set(ref, queued);
    const settled = () => {
      queued.builtOn = undefined;
      if (this.#last.get(ref) === queued) this.#last.delete(ref);
    };
    const done = committer.submit(queued);
    done.then(settled, () => {
      queued.failed = true;
      settled();
    });
    return done;
  }
}
