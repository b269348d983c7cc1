// Contract, part 3: group commit. Concurrent commits share transactions, and each one still
// succeeds or fails on its own.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createCommit,
  createEventsKey,
  createInstance,
  eventCommit,
  instanceKey,
  outcomeCode,
  seedMachine,
  timer,
  using,
  type ContractStore,
} from "./fixtures.js";

/**
 * Runs the commits `start` starts and asserts they shared one transaction; answers how each
 * settled.
 */
async function inOneTransaction<T>(
  store: ContractStore,
  start: () => Array<Promise<T>>,
): Promise<Array<PromiseSettledResult<T>>> {
  const before = store.stats.batches;
  const outcomes = await Promise.allSettled(start());
  const batches = store.stats.batches - before;
  assert.equal(batches, 1, `the ${outcomes.length} commits shared one transaction`);
  return outcomes;
}

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

      const outcomes = await inOneTransaction(store, () => [
        store.commitTransition(eventCommit(a, idA, 1, { timersToArm: [timer("ta", 10)] })),
        // Stale sequence: B is at 1.
        store.commitTransition(eventCommit(b, idB, 4, { timersToArm: [timer("tb", 10)] })),
        store.commitTransition(createCommit(d)),
        // A second create of the same name in the same batch.
        store.commitTransition(createCommit(c)),
        store.commitTransition(eventCommit(c, idC, 1)),
      ]);
      const codes = outcomes.map(outcomeCode);
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

  test("plain event commits sharing a batch are each written or refused on their own", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await createEventsKey(store, "org_a", "sbk_live");
      const names = ["a", "b", "c", "d", "e", "f"];
      const keys = names.map((name) => instanceKey("org_a", name));
      const ids: number[] = [];
      for (const key of keys) ids.push(await createInstance(store, key));
      const send = (extra: Parameters<typeof eventCommit>[3][]) =>
        inOneTransaction(store, () =>
          keys.map((key, i) =>
            store.commitTransition(eventCommit(key, ids[i]!, 1, extra[i] ?? {})),
          ),
        );

      // Refusals that are answers: a stale sequence, a key gone, another instance's id.
      const answered = await send([
        { requiresKeyId: "sbk_live" },
        { expectedSequence: 3 },
        { requiresKeyId: "sbk_gone" },
        { instanceId: ids[0]! },
        {},
        { expectedPendingServices: ["svc"] },
      ]);
      assert.deepEqual(answered.map(outcomeCode), [
        "ok",
        "conflict",
        "token-unknown-key",
        "conflict",
        "ok",
        "conflict",
      ]);
      const sequences = async () =>
        Promise.all(keys.map(async (key) => (await store.loadInstance(key))?.sequence));
      assert.deepEqual(await sequences(), [2, 1, 1, 1, 2, 1]);

      // A refusal that is an error (no such version) fails alone too.
      const failed = await send([
        { expectedSequence: 2 },
        { machineVersionId: "ver_nope" },
        {},
        {},
        { expectedSequence: 2 },
        {},
      ]);
      assert.deepEqual(failed.map(outcomeCode), ["ok", "not-found", "ok", "ok", "ok", "ok"]);
      assert.deepEqual(await sequences(), [3, 1, 2, 2, 3, 2]);
      for (const [i, key] of keys.entries()) {
        const history = await store.listTransitions(key, { limit: 10 });
        assert.deepEqual(
          history.map((row) => row.sequence),
          Array.from({ length: [3, 1, 2, 2, 3, 2][i]! }, (_, n) => n + 1),
          `the history of ${names[i]} has one transition per sequence`,
        );
      }
    }));

  test("plain commits of one batch each write their own snapshot and transition", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const names = ["p", "q", "r", "s", "t"];
      const keys = names.map((name) => instanceKey("org_a", name));
      const ids: number[] = [];
      for (const key of keys) ids.push(await createInstance(store, key));
      // Each commit its own texts and time; the second is refused, so the ones after it sit at
      // other positions among the rows written than among the commits sent.
      const own = (i: number) => ({
        snapshot: JSON.stringify({ value: names[i], n: i }),
        transition: { event: `{"type":"e${i}"}`, state: JSON.stringify(names[i]) },
        at: 1_800_000_000_000 + i * 1_000,
      });
      const outcomes = await inOneTransaction(store, () =>
        keys.map((key, i) =>
          store.commitTransition(eventCommit(key, ids[i]!, i === 1 ? 5 : 1, own(i))),
        ),
      );
      assert.deepEqual(outcomes.map(outcomeCode), ["ok", "conflict", "ok", "ok", "ok"]);
      for (const [i, key] of keys.entries()) {
        const instance = await store.loadInstance(key);
        const history = await store.listTransitions(key, { limit: 10 });
        if (i === 1) {
          assert.deepEqual(
            history.map((row) => row.sequence),
            [1],
            "the refused one wrote nothing",
          );
          continue;
        }
        const { snapshot, transition, at } = own(i);
        assert.equal(instance?.snapshot, snapshot, `${names[i]}'s snapshot`);
        assert.equal(instance?.updatedAt, at);
        assert.deepEqual(history.at(-1), { sequence: 2, ...transition, createdAt: at });
      }
    }));

  test("a batch mixing plain commits, timers and a chain answers each in its place", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      await createEventsKey(store, "org_b", "sbk_b");
      const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((name) => instanceKey("org_a", name));
      assert.ok(a && b && c && d && e);
      const [idA, idB, idC, idD, idE] = await Promise.all(
        [a, b, c, d, e].map((key) => createInstance(store, key)),
      );
      assert.equal(await store.setInstanceStatus(e, "paused"), true);

      const mixed = await inOneTransaction(store, () => [
        store.commitTransition(eventCommit(a, idA!, 1)),
        store.commitTransition(eventCommit(b, idB!, 1, { timersToArm: [timer("tb", 10)] })),
        store.commitTransition(eventCommit(c, idC!, 1)),
        store.commitTransition(eventCommit(c, idC!, 2)),
        // Another org's key, and a paused instance: refused, among plain commits.
        store.commitTransition(eventCommit(d, idD!, 1, { requiresKeyId: "sbk_b" })),
        store.commitTransition(eventCommit(e, idE!, 1)),
      ]);
      assert.deepEqual(mixed.map(outcomeCode), [
        "ok",
        "ok",
        "ok",
        "ok",
        "token-unknown-key",
        "conflict",
      ]);
      const sequences = async () =>
        Promise.all([a, b, c, d, e].map(async (key) => (await store.loadInstance(key))?.sequence));
      assert.deepEqual(await sequences(), [2, 2, 3, 1, 1]);

      // A commit with timers failing with an error: the plain ones around it still land.
      const failing = await inOneTransaction(store, () => [
        store.commitTransition(eventCommit(a, idA!, 2)),
        store.commitTransition(
          eventCommit(b, idB!, 2, {
            machineVersionId: "ver_nope",
            timersToArm: [timer("tb2", 20)],
          }),
        ),
        store.commitTransition(eventCommit(d, idD!, 1)),
      ]);
      assert.deepEqual(failing.map(outcomeCode), ["ok", "not-found", "ok"]);
      assert.deepEqual(await sequences(), [3, 2, 3, 2, 1]);
      const timers = await store.claimDueTimers(100, 10, 1000);
      assert.deepEqual(
        timers.map((t) => t.key),
        ["tb"],
        "only the written commit's timer is armed",
      );
      for (const [key, length] of [
        [a, 3],
        [b, 2],
        [c, 3],
        [d, 2],
        [e, 1],
      ] as const) {
        const history = await store.listTransitions(key, { limit: 10 });
        assert.equal(history.length, length, `the history of ${key.instanceName}`);
      }
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
