// Contract, part 3: group commit. Concurrent commits share transactions, and each one still
// succeeds or fails on its own.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createCommit,
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  timer,
  using,
  type ContractStore,
} from "./fixtures.js";

export function groupCommitContract(open: () => Promise<ContractStore>): void {
  test("200 concurrent commits all succeed, in fewer than 200 transactions", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const keys = Array.from({ length: 200 }, (_, i) => instanceKey("org_a", `i${i}`));
      const before = store.stats.batches;
      const results = await Promise.all(
        keys.map((key) => store.commitTransition(createCommit(key))),
      );
      const batches = store.stats.batches - before;
      assert.ok(batches >= 1 && batches < 200, `ran ${batches} transactions for 200 commits`);
      assert.equal(new Set(results.map((result) => result.instanceId)).size, 200);
      for (const [i, key] of keys.entries()) {
        const loaded = await store.loadInstance(key);
        assert.equal(loaded?.id, results[i]?.instanceId);
        assert.equal(loaded?.sequence, 1);
      }
    }));

  test("a failing commit fails alone; the rest of its batch commits", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const [a, b, c, d] = ["a", "b", "c", "d"].map((name) => instanceKey("org_a", name));
      assert.ok(a && b && c && d);
      const idA = await createInstance(store, a);
      const idB = await createInstance(store, b);
      const idC = await createInstance(store, c);

      const before = store.stats.batches;
      const outcomes = await Promise.allSettled([
        store.commitTransition(eventCommit(a, idA, 1, { timersToArm: [timer("ta", 10)] })),
        // Stale sequence: B is at 1.
        store.commitTransition(eventCommit(b, idB, 4, { timersToArm: [timer("tb", 10)] })),
        store.commitTransition(createCommit(d)),
        // A second create of the same name in the same batch.
        store.commitTransition(createCommit(c)),
        store.commitTransition(eventCommit(c, idC, 1)),
      ]);
      assert.equal(store.stats.batches - before, 1, "the five commits shared one transaction");
      const codes = outcomes.map((outcome) =>
        outcome.status === "fulfilled" ? "ok" : (outcome.reason as { code?: string }).code,
      );
      assert.deepEqual(codes, ["ok", "conflict", "ok", "already-exists", "ok"]);

      assert.equal((await store.loadInstance(a))?.sequence, 2);
      assert.equal((await store.loadInstance(b))?.sequence, 1);
      assert.equal((await store.loadInstance(c))?.sequence, 2);
      assert.equal((await store.loadInstance(d))?.sequence, 1);
      assert.equal((await store.listTransitions(b, { limit: 10 })).length, 1);
      const timers = await store.claimDueTimers(10, 10, 1000);
      assert.deepEqual(
        timers.map((t) => t.key),
        ["ta"],
        "the failed commit armed no timer",
      );
    }));

  test("commits queued together for one instance apply in order", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      const results = await Promise.all([
        store.commitTransition(eventCommit(key, id, 1)),
        store.commitTransition(eventCommit(key, id, 2)),
        store.commitTransition(eventCommit(key, id, 3)),
      ]);
      assert.deepEqual(
        results.map((result) => result.sequence),
        [2, 3, 4],
      );
      assert.equal((await store.loadInstance(key))?.sequence, 4);
    }));
}
