import assert from "node:assert/strict";
import { test } from "node:test";
import { BackstateError, ConflictError, NotFoundError } from "../errors.js";
import type {
  CommitResult,
  InstanceRecord,
  Store,
  TransitionCommit,
  TransitionRecord,
} from "../store/store.js";
import { commitRetryingStoreErrors, retryingStoreErrors } from "./result-commit-retries.js";

const commit: TransitionCommit = {
  kind: "event",
  instance: { orgId: "org", machineName: "m", instanceName: "i" },
  instanceId: 7,
  machineVersionId: "ver",
  expectedSequence: 3,
  expectedPendingServices: ["s"],
  snapshot: '{"machine":{},"write":"w-ours"}',
  pendingServices: [],
  transition: { event: '{"type":"done"}', state: '"idle"' },
  timersToArm: [],
  timersToCancel: [],
  timersToDetach: [],
  at: 1000,
};

const ours: TransitionRecord = {
  sequence: 4,
  event: commit.transition.event,
  state: commit.transition.state,
  createdAt: commit.at,
};

/** The instance as this commit leaves it. */
const landed = {
  ...commit.instance,
  id: 7,
  sequence: 4,
  snapshot: commit.snapshot,
} as InstanceRecord;

type Answer = CommitResult | Error;

/**
 * A store answering each commit, and each read of the history, with the next of its answers, and
 * a read of the instance with `instance` (this commit's landed write, unless told).
 */
function scripted(
  commits: Answer[],
  reads: Array<TransitionRecord[] | Error> = [],
  instance: InstanceRecord | undefined = landed,
) {
  const calls = { commits: 0, reads: 0 };
  const store = {
    commitTransition: (given: TransitionCommit) => {
      assert.equal(given, commit, "every try is the same commit");
      const answer = commits[calls.commits++];
      if (answer === undefined) throw new Error("more tries than expected");
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    listTransitions: () => {
      const answer = reads[calls.reads++];
      if (answer === undefined) throw new Error("more reads than expected");
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    loadInstance: () => Promise.resolve(instance),
  } as unknown as Store;
  return { store, calls };
}

const storeError = () => new BackstateError("store-error", "storage failed: connection cut");
const DELAYS = [1, 1, 1];
const ignore = () => {};

test("a store error is followed by further tries, up to the bound, then thrown", async () => {
  const { store, calls } = scripted([storeError(), storeError(), { instanceId: 7, sequence: 4 }]);
  assert.deepEqual(await commitRetryingStoreErrors(store, commit, DELAYS, ignore), {
    instanceId: 7,
    sequence: 4,
  });
  assert.equal(calls.commits, 3);
  const failing = scripted([storeError(), storeError(), storeError(), storeError()]);
  await assert.rejects(commitRetryingStoreErrors(failing.store, commit, DELAYS, ignore), {
    code: "store-error",
  });
  assert.equal(failing.calls.commits, 4);
});

test("a refusal is thrown at once, before or after a store error", async () => {
  for (const refusal of [new ConflictError("moved on"), new NotFoundError("gone")]) {
    const { store, calls } = scripted([refusal]);
    await assert.rejects(commitRetryingStoreErrors(store, commit, DELAYS, ignore), refusal);
    assert.equal(calls.commits, 1);
    assert.equal(calls.reads, 0, "a conflict on the first try says nothing of an earlier one");
  }
  const { store } = scripted([storeError(), new NotFoundError("gone")]);
  await assert.rejects(commitRetryingStoreErrors(store, commit, DELAYS, ignore), {
    code: "not-found",
  });
});

test("a conflict after a store error: answered as written when the history shows this commit", async () => {
  const { store, calls } = scripted([storeError(), new ConflictError("moved on")], [[ours]]);
  assert.deepEqual(await commitRetryingStoreErrors(store, commit, DELAYS, ignore), {
    instanceId: 7,
    sequence: 4,
  });
  assert.equal(calls.commits, 2);
});

test("a conflict after a store error: thrown when another writer's row moved the instance", async () => {
  const others: TransitionRecord[][] = [
    [],
    [{ ...ours, event: '{"type":"other"}' }],
    [{ ...ours, createdAt: 999 }],
    [{ ...ours, sequence: 5 }],
  ];
  for (const rows of others) {
    const conflict = new ConflictError("moved on");
    const { store } = scripted([storeError(), conflict], [rows]);
    await assert.rejects(commitRetryingStoreErrors(store, commit, DELAYS, ignore), conflict);
  }
});

test("a conflict after a store error: thrown when another writer's like row is the last, its snapshot not this commit's", async () => {
  // Another node stepped the same event from the same record at the same time (a service lost to
  // both): its row reads as this commit's, its write (snapshot, with its own id) does not.
  const theirs = { ...landed, snapshot: '{"machine":{},"write":"w-theirs"}' };
  const conflict = new ConflictError("moved on");
  const { store } = scripted([storeError(), conflict], [[ours]], theirs);
  await assert.rejects(commitRetryingStoreErrors(store, commit, DELAYS, ignore), conflict);
});

test("a conflict after a store error: this commit's row, the instance moved on since: answered as written", async () => {
  const movedOn = { ...landed, sequence: 5, snapshot: '{"machine":{},"write":"w-later"}' };
  const { store } = scripted([storeError(), new ConflictError("moved on")], [[ours]], movedOn);
  assert.deepEqual(await commitRetryingStoreErrors(store, commit, DELAYS, ignore), {
    instanceId: 7,
    sequence: 4,
  });
});

test("a history that cannot be read counts as another store error", async () => {
  const { store, calls } = scripted(
    [storeError(), new ConflictError("moved on"), new ConflictError("moved on")],
    [storeError(), [ours]],
  );
  assert.deepEqual(await commitRetryingStoreErrors(store, commit, DELAYS, ignore), {
    instanceId: 7,
    sequence: 4,
  });
  assert.equal(calls.commits, 3);
  const unreadable = scripted([storeError(), new ConflictError("moved on")], [storeError()]);
  await assert.rejects(commitRetryingStoreErrors(unreadable.store, commit, [1], ignore), {
    code: "store-error",
  });
});

test("a write that may be repeated is tried again on store errors only, up to the bound", async () => {
  let calls = 0;
  const flaky = () => (++calls < 3 ? Promise.reject(storeError()) : Promise.resolve("leased"));
  assert.equal(await retryingStoreErrors(flaky, DELAYS, ignore), "leased");
  assert.equal(calls, 3);
  calls = 0;
  const refused = () => (++calls, Promise.reject(new NotFoundError("gone")));
  await assert.rejects(retryingStoreErrors(refused, DELAYS, ignore), { code: "not-found" });
  assert.equal(calls, 1);
  calls = 0;
  const down = () => (++calls, Promise.reject(storeError()));
  await assert.rejects(retryingStoreErrors(down, DELAYS, ignore), { code: "store-error" });
  assert.equal(calls, 1 + DELAYS.length);
});
