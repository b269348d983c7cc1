// Applies transition commits: one commit's writes, and the group-commit batch that runs many of
// them in one SQLite transaction, each inside its own savepoint.
import type Database from "better-sqlite3";
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  SigningKeyGoneError,
} from "../../errors.js";
import type { QueuedCommit } from "../commit-chains.js";
import type { Outcome } from "../group-commit.js";
import type { CommitResult, TransitionCommit } from "../store.js";
import { isForeignKeyViolation, isUniqueViolation, toStoreError } from "./sqlite-errors.js";
import type { Statements } from "./statements.js";

/** Every write of one commit. Runs inside a transaction or savepoint opened by the caller. */
export function applyCommit(s: Statements, commit: TransitionCommit): CommitResult {
  const { instance: key, expectedSequence } = commit;
  const sequence = expectedSequence + 1;
  const pendingServices = JSON.stringify(commit.pendingServices);
  const version = commit.machineVersionId;
  let instanceId: number;

  // Before any write: a commit refused for its key leaves the instance as it was.
  if (
    commit.requiresKeyId !== undefined &&
    s.keyExists.get(key.orgId, commit.requiresKeyId) === undefined
  ) {
    throw new SigningKeyGoneError(commit.requiresKeyId);
  }
  if (commit.kind === "create") {
    if (expectedSequence !== 0) throw new TypeError("a create commit expects sequence 0");
    if (s.versionExists.get(key.orgId, key.machineName, version) === undefined) {
      throw new NotFoundError(`machine ${key.machineName} has no version ${version}`);
    }
    try {
      // The UNIQUE (org, machine, name) constraint decides a race between two creates; a
      // pre-check could not, since both would pass it.
      const inserted = s.insertInstance.run(
        key.orgId,
        key.machineName,
        key.instanceName,
        version,
        commit.snapshot,
        sequence,
        pendingServices,
        commit.at,
        commit.at,
      );
      instanceId = Number(inserted.lastInsertRowid);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AlreadyExistsError(`instance ${key.instanceName} already exists`);
      }
      throw error;
    }
  } else {
    if (commit.instanceId === undefined) throw new TypeError("an event commit needs instanceId");
    if (commit.expectedPendingServices === undefined) {
      throw new TypeError("an event commit needs expectedPendingServices");
    }
    instanceId = commit.instanceId;
    let changes: number;
    try {
      changes = s.updateInstance.run(
        version,
        commit.snapshot,
        sequence,
        pendingServices,
        commit.at,
        instanceId,
        key.orgId,
        key.machineName,
        key.instanceName,
        expectedSequence,
        JSON.stringify(commit.expectedPendingServices),
      ).changes;
    } catch (error) {
      if (isForeignKeyViolation(error)) {
        throw new NotFoundError(`machine ${key.machineName} has no version ${version}`);
      }
      throw error;
    }
    if (changes === 0) {
      throw new ConflictError(
        `instance ${key.instanceName} is no longer running at sequence ${expectedSequence} with the pending services expected`,
      );
    }
  }

  s.insertTransition.run(
    instanceId,
    sequence,
    commit.transition.event,
    commit.transition.state,
    commit.at,
  );
  // Scoped to this instance: a timer id from anywhere else deletes nothing. A timer that is gone
  // was cancelled after it was claimed: delivering it now would be wrong, so the whole commit
  // fails and a timer fires at most once.
  if (commit.deliveredTimerId !== undefined) {
    if (s.deleteTimerOfInstance.run(commit.deliveredTimerId, instanceId).changes === 0) {
      throw new ConflictError(
        `timer ${commit.deliveredTimerId} was cancelled or already delivered`,
      );
    }
  }
  if (commit.deliveredTimerKey !== undefined) {
    if (s.deleteAttachedTimer.run(instanceId, commit.deliveredTimerKey).changes === 0) {
      throw new ConflictError(
        `timer ${commit.deliveredTimerKey} was cancelled or already delivered`,
      );
    }
  }
  for (const timerKey of commit.timersToCancel) s.deleteAttachedTimer.run(instanceId, timerKey);
  for (const timerKey of commit.timersToDetach) s.detachTimer.run(instanceId, timerKey);
  for (const timer of commit.timersToArm) {
    // The key's timer armed before stays armed, out of a cancel's reach (see TimerToArm).
    if (timer.detached !== true) s.detachTimer.run(instanceId, timer.key);
    s.insertTimer.run(
      instanceId,
      commit.instance.orgId,
      timer.key,
      timer.dueAt,
      timer.event,
      timer.detached === true ? 1 : 0,
    );
  }
  return { instanceId, sequence };
}

/**
 * The group-commit runner: all commits in one IMMEDIATE transaction, each in a savepoint, so a
 * failing commit is rolled back alone, and a commit built on one that failed (commit-chains.ts)
 * is refused without being tried. Throws when the transaction as a whole fails (BEGIN or
 * COMMIT), and then better-sqlite3 has rolled everything back.
 */
export function commitBatchRunner(
  db: Database.Database,
  s: Statements,
): (batch: readonly QueuedCommit[]) => Outcome<CommitResult>[] {
  // Called inside the outer transaction, a better-sqlite3 transaction function is a savepoint.
  const inSavepoint = db.transaction((commit: TransitionCommit) => applyCommit(s, commit));
  const inTransaction = db.transaction((batch: readonly QueuedCommit[]) =>
    batch.map((queued): Outcome<CommitResult> => {
      const { commit } = queued;
      if (queued.builtOn?.failed === true) {
        queued.failed = true;
        return {
          ok: false,
          error: new ConflictError(`an earlier commit of ${commit.instance.instanceName} failed`),
        };
      }
      try {
        return { ok: true, value: inSavepoint(commit) };
      } catch (error) {
        queued.failed = true;
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction; going on
        // would commit the rest outside any transaction, so the batch fails as a whole instead.
        if (!db.inTransaction) throw error;
        return { ok: false, error: toStoreError(error) };
      }
    }),
  );
  return (batch) => inTransaction.immediate(batch);
}
