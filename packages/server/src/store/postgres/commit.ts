// Applies transition commits: one commit's writes, and the group-commit batch that runs many of
// them in one PostgreSQL transaction, each inside its own savepoint.
import type { Pool, PoolClient } from "pg";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../../errors.js";
import type { Outcome } from "../group-commit.js";
import type { CommitResult, InstanceKey, TimerToArm, TransitionCommit } from "../store.js";
import {
  changes,
  isForeignKeyViolation,
  isUniqueViolation,
  rollback,
  rows,
  toCommitError,
} from "./connection.js";
import { SQL } from "./sql.js";

/** Every write of one commit. Runs inside a transaction (and savepoint) opened by the caller. */
export async function applyCommit(
  client: PoolClient,
  commit: TransitionCommit,
): Promise<CommitResult> {
  const { instance: key, expectedSequence } = commit;
  const sequence = expectedSequence + 1;
  const pendingServices = JSON.stringify(commit.pendingServices);
  const version = commit.machineVersionId;
  const { event, state } = commit.transition;
  const noVersion = () => new NotFoundError(`machine ${key.machineName} has no version ${version}`);
  let instanceId: number;

  if (commit.kind === "create") {
    if (expectedSequence !== 0) throw new TypeError("a create commit expects sequence 0");
    let created: { instanceId: number }[];
    try {
      created = await rows(client, SQL.createInstance, [
        key.orgId,
        key.machineName,
        key.instanceName,
        version,
        commit.snapshot,
        sequence,
        pendingServices,
        commit.at,
        event,
        state,
      ]);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AlreadyExistsError(`instance ${key.instanceName} already exists`);
      }
      // The instance's only parent is its version (of its machine, of its org).
      if (isForeignKeyViolation(error)) throw noVersion();
      throw error;
    }
    instanceId = only(created).instanceId;
  } else {
    if (commit.instanceId === undefined) throw new TypeError("an event commit needs instanceId");
    instanceId = commit.instanceId;
    let updated: { instanceId: number }[];
    try {
      updated = await rows(client, SQL.updateInstance, [
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
        event,
        state,
      ]);
    } catch (error) {
      if (isForeignKeyViolation(error)) throw noVersion();
      throw error;
    }
    if (updated.length === 0) {
      throw new ConflictError(
        `instance ${key.instanceName} is no longer at sequence ${expectedSequence}`,
      );
    }
  }

  // Scoped to this instance: a timer id from anywhere else deletes nothing. A timer that is gone
  // was cancelled (or re-armed) after it was claimed: delivering it now would be wrong, so the
  // whole commit fails and a timer fires at most once.
  if (commit.deliveredTimerId !== undefined) {
    const deleted = await changes(client, SQL.deleteTimerOfInstance, [
      commit.deliveredTimerId,
      instanceId,
    ]);
    if (deleted === 0) {
      throw new ConflictError(
        `timer ${commit.deliveredTimerId} was cancelled or already delivered`,
      );
    }
  }
  // Cancelled keys go, and so does the old timer of every key armed again: re-arming replaces the
  // timer with a new id, so a late delivery of the old one (which names the old id) cannot delete
  // its replacement.
  const armed = lastPerKey(commit.timersToArm);
  const replaced = [...new Set([...commit.timersToCancel, ...armed.map((timer) => timer.key)])];
  if (replaced.length > 0) await changes(client, SQL.deleteTimersByKey, [instanceId, replaced]);
  if (armed.length > 0) {
    await changes(client, SQL.insertTimers, [
      instanceId,
      armed.map((timer) => timer.key),
      armed.map((timer) => timer.dueAt),
      armed.map((timer) => timer.event),
    ]);
  }
  return { instanceId, sequence };
}

/** A key armed twice by one commit ends up with its last timer, as arming them in turn would. */
function lastPerKey(timers: readonly TimerToArm[]): TimerToArm[] {
  const byKey = new Map<string, TimerToArm>();
  for (const timer of timers) {
    byKey.delete(timer.key);
    byKey.set(timer.key, timer);
  }
  return [...byKey.values()];
}

function only<T>(list: readonly T[]): T {
  const [first] = list;
  if (first === undefined || list.length !== 1) {
    throw new Error(`expected one row, got ${list.length}`);
  }
  return first;
}

/** Orders instance keys the same way on every node: org, then machine, then instance name. */
function compareKeys(a: InstanceKey, b: InstanceKey): number {
  return (
    compareText(a.orgId, b.orgId) ||
    compareText(a.machineName, b.machineName) ||
    compareText(a.instanceName, b.instanceName)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The group-commit runner: all commits in one transaction on one connection, each in a savepoint,
 * so a failing commit is rolled back alone while the others stay. Throws when the transaction as
 * a whole fails (it cannot start, a savepoint cannot be rolled back to, COMMIT fails): then
 * nothing of the batch is written. Resolves after COMMIT, so with PostgreSQL's default
 * `synchronous_commit` every commit it reports is durable.
 *
 * Every row a commit writes belongs to its instance, and a batch holds its locks until it ends. So
 * commits are applied in instance-key order (stable: one instance's commits keep their order):
 * two nodes' batches then lock instances in the same order, and wait for each other rather than
 * deadlock. Outcomes are returned in the batch's order.
 */
export function commitBatchRunner(
  pool: Pool,
): (batch: readonly TransitionCommit[]) => Promise<Outcome<CommitResult>[]> {
  return async (batch) => {
    const order = batch
      .map((commit, index) => ({ commit, index }))
      .sort((a, b) => compareKeys(a.commit.instance, b.commit.instance) || a.index - b.index);
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      // One savepoint name, reused: after a success it is released and set anew (one round
      // trip); after a failure, rolling back to it leaves it in place for the next commit.
      await client.query("BEGIN; SAVEPOINT one_commit");
      const outcomes = new Array<Outcome<CommitResult>>(batch.length);
      let previousOk = false;
      for (const { commit, index } of order) {
        if (previousOk) await client.query("RELEASE SAVEPOINT one_commit; SAVEPOINT one_commit");
        try {
          outcomes[index] = { ok: true, value: await applyCommit(client, commit) };
          previousOk = true;
        } catch (error) {
          const failed = await rollback(client, "ROLLBACK TO SAVEPOINT one_commit");
          // The connection is gone (or the transaction with it): the batch fails as a whole.
          if (failed !== undefined) throw failed;
          outcomes[index] = { ok: false, error: toCommitError(error) };
          previousOk = false;
        }
      }
      await client.query("COMMIT");
      return outcomes;
    } catch (error) {
      broken = await rollback(client, "ROLLBACK");
      throw error;
    } finally {
      client.release(broken);
    }
  };
}
