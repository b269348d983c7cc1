// A service's result (its done or error event, or an event it sent while running) is in hand when
// its commit fails on a store error: a cut connection, a database restarting, a store that failed
// once. Dropped, its service would end with nothing written, and the machine would get the
// service's error event before its next event instead of the result. So its commit is tried again
// a few times, a while apart. The caller holds the instance's mailbox meanwhile: the instance's
// later events wait behind the result, as they would behind a slow commit, and other instances
// go on. The lease the result's step takes first when it starts services (service-leases.ts), and
// the read of the instance the result is stepped on when the node does not remember it, are tried
// again the same way. So is an event the machine sent itself, which is in hand as well (its
// commit takes its backstop timer, transition-commit.ts, so no two tries both write it).
//
// Each try is the very same commit: it expects the row exactly as the first try did (sequence and
// pending services), so at most one try is ever written. A store error may leave unknown whether
// a try landed (its answer was lost and the store could not learn the batch's fate, see
// store/postgres/ambiguous-batch.ts). A later try then finds the instance moved on (a
// ConflictError), and the history row that moved it tells whether it was this commit: if so, the
// commit is answered as written; if not, another writer changed the instance, and the conflict is
// the caller's to handle as any other.
import { BackstateError, ConflictError } from "../errors.js";
import type { CommitResult, Store, TransitionCommit } from "../store/store.js";
import type { Logger } from "./logger.js";

/** The waits before each further try of a service result's commit: 4 tries over ~2 s. */
export const RESULT_COMMIT_RETRY_DELAYS_MS: readonly number[] = [100, 400, 1_600];

/**
 * The onStoreError of the retries below: logs that `write` (of instance `instanceRef`, for a
 * service's result or a self-sent event in hand) failed and is tried again.
 */
export function loggingRetries(
  logger: Logger,
  write: "commit" | "lease" | "read",
  instanceRef: string,
): (err: unknown, retry: number) => void {
  return (err, retry) =>
    logger.warn("a write of an event in hand failed on a store error; trying again", {
      instance: instanceRef,
      write,
      retry,
      error: String(err),
    });
}

export function isStoreError(err: unknown): boolean {
  return err instanceof BackstateError && err.code === "store-error";
}

/**
 * Runs `write`, one that may be repeated as it is (the lease a result's step takes before its
 * commit when it starts services), trying again after each store error, `delaysMs` apart.
 */
export async function retryingStoreErrors<T>(
  write: () => Promise<T>,
  delaysMs: readonly number[],
  onStoreError: (err: unknown, retry: number) => void,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await write();
    } catch (err) {
      if (!isStoreError(err) || retry >= delaysMs.length) throw err;
      onStoreError(err, retry + 1);
      await pause(delaysMs[retry]!);
    }
  }
}

/**
 * Commits `commit`, trying again after each store error, `delaysMs` apart. Throws what the last
 * try threw: a store error once the tries are spent (the commit may then have landed, unknown);
 * any other refusal (a conflict, a paused or deleted instance) at once.
 */
export async function commitRetryingStoreErrors(
  store: Store,
  commit: TransitionCommit,
  delaysMs: readonly number[],
  onStoreError: (err: unknown, retry: number) => void,
): Promise<CommitResult> {
  // Whether an earlier try failed on a store error, and so may have landed.
  let uncertain = false;
  for (let retry = 0; ; retry++) {
    let failure: unknown;
    try {
      return await store.commitTransition(commit);
    } catch (err) {
      failure = err;
    }
    if (uncertain && failure instanceof ConflictError) {
      try {
        const landed = await landedEarlier(store, commit);
        if (landed !== undefined) return landed;
        throw failure;
      } catch (err) {
        if (!isStoreError(err)) throw err;
        // The history could not be read: unknown still, as after the store error it is.
        failure = err;
      }
    }
    if (!isStoreError(failure) || retry >= delaysMs.length) throw failure;
    uncertain = true;
    onStoreError(failure, retry + 1);
    await pause(delaysMs[retry]!);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * What an earlier try of `commit` came to if it landed, else undefined. The history row after the
 * sequence it expected must be as its own (the same event and state, at the same time); another
 * node may have written just such a row (the error event of a service lost to both, stepped
 * from the same record), so while that row is the instance's last, the instance's snapshot must
 * be the commit's own too, which its write id (SnapshotEnvelope.write) makes unique. Once a later
 * commit has moved the instance on, the row is all there is to go by.
 */
async function landedEarlier(
  store: Store,
  commit: TransitionCommit,
): Promise<CommitResult | undefined> {
  if (commit.instanceId === undefined) return undefined;
  const [row] = await store.listTransitions(commit.instance, {
    afterSequence: commit.expectedSequence,
    limit: 1,
  });
  const sameRow =
    row !== undefined &&
    row.sequence === commit.expectedSequence + 1 &&
    row.createdAt === commit.at &&
    row.event === commit.transition.event &&
    row.state === commit.transition.state;
  if (!sameRow) return undefined;
  const instance = await store.loadInstance(commit.instance);
  const stillLast = instance?.id === commit.instanceId && instance.sequence === row.sequence;
  if (stillLast && instance.snapshot !== commit.snapshot) return undefined;
  return { instanceId: commit.instanceId, sequence: row.sequence };
}
