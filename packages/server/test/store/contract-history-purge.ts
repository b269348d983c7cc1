// Contract, part 6: a deleted instance's history is gone from every read at once, and removed
// afterwards a bounded chunk at a time by purgeDeletedHistory, whose queue outlives the store object.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { InstanceKey } from "../../src/store/store.js";
import type { Reopen } from "./contract-durability.js";
import {
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  timer,
  using,
  type ContractStore,
} from "./fixtures.js";

/** Creates `key` with `rows` history rows in all (the creation and rows - 1 events). */
async function instanceWithHistory(
  store: ContractStore,
  key: InstanceKey,
  rows: number,
  mark = "old",
): Promise<number> {
  const id = await createInstance(store, key, {
    transition: { event: `{"type":"xstate.init","mark":"${mark}"}`, state: '"idle"' },
  });
  for (let sequence = 1; sequence < rows; sequence++) {
    const commit = eventCommit(key, id, sequence, {
      transition: { event: `{"type":"inc","mark":"${mark}"}`, state: '"busy"' },
    });
    await store.commitTransition(commit);
  }
  return id;
}

/** Calls purgeDeletedHistory(maxRows) until it returns 0; returns each chunk's count. */
async function purgeAll(store: ContractStore, maxRows: number): Promise<number[]> {
  const chunks: number[] = [];
  for (;;) {
    const rows = await store.purgeDeletedHistory(maxRows);
    if (rows === 0) return chunks;
    chunks.push(rows);
    assert.ok(chunks.length < 1000, "the purge never ends");
  }
}

export function historyPurgeContract(open: () => Promise<ContractStore>, reopen?: Reopen): void {
  test("a deleted instance's history is invisible to a new instance of its name, and purged in chunks", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const oldId = await instanceWithHistory(store, key, 25);
      await store.commitTransition(eventCommit(key, oldId, 25, { timersToArm: [timer("t", 10)] }));
      assert.equal(await store.deleteInstance(key), true);
      assert.equal(await store.loadInstance(key), undefined);
      assert.deepEqual(await store.listTransitions(key, { limit: 100 }), []);
      assert.deepEqual(await store.listInstances("org_a", "counter", { limit: 10 }), []);

      // The purge has not run: the new instance's history is its own, from the first page on.
      const newId = await instanceWithHistory(store, key, 3, "new");
      assert.notEqual(newId, oldId);
      const marks = async (newestFirst: boolean) =>
        (await store.listTransitions(key, { limit: 100, newestFirst })).map((row) => [
          row.sequence,
          (JSON.parse(row.event) as { mark: string }).mark,
        ]);
      const expected = [
        [1, "new"],
        [2, "new"],
        [3, "new"],
      ];
      assert.deepEqual(await marks(false), expected);
      assert.deepEqual(await marks(true), expected.toReversed());

      // 26 old rows, in chunks of at most 10; none of the new instance's.
      assert.deepEqual(await purgeAll(store, 10), [10, 10, 6]);
      assert.deepEqual(await marks(false), expected);
      assert.equal((await store.loadInstance(key))?.sequence, 3);
      // Nothing is queued any more, and the old instance's timer went with its delete.
      assert.equal(await store.purgeDeletedHistory(10), 0);
      assert.deepEqual(await store.claimDueTimers(Number.MAX_SAFE_INTEGER, 10, 1000), []);
    }));

  test("one purge chunk goes on to the next deleted instance when one's history runs out", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      const first = instanceKey("org_a", "a");
      const second = instanceKey("org_b", "b");
      await instanceWithHistory(store, first, 4);
      await instanceWithHistory(store, second, 3);
      const kept = instanceKey("org_a", "kept");
      await instanceWithHistory(store, kept, 2);
      await store.deleteInstance(first);
      await store.deleteInstance(second);
      // Deleting nothing queues nothing.
      assert.equal(await store.deleteInstance(instanceKey("org_a", "never")), false);
      assert.deepEqual(await purgeAll(store, 5), [5, 2]);
      assert.equal((await store.listTransitions(kept, { limit: 10 })).length, 2);
    }));

  test("a purge chunk of no rows is refused as misuse", () =>
    using(open, async (store) => {
      await assert.rejects(store.purgeDeletedHistory(0), TypeError);
      await assert.rejects(store.purgeDeletedHistory(1.5), TypeError);
    }));

  const skip = reopen === undefined && "this storage does not outlive its store object";
  test("a purge cut short goes on after the store is reopened", { skip }, async () => {
    assert.ok(reopen);
    const first = await open();
    let second: ContractStore | undefined;
    try {
      await seedMachine(first, "org_a");
      const key = instanceKey("org_a", "i1");
      await instanceWithHistory(first, key, 30);
      await first.deleteInstance(key);
      assert.equal(await first.purgeDeletedHistory(12), 12);
      second = await reopen(first);
      assert.equal(await second.loadInstance(key), undefined);
      assert.deepEqual(await purgeAll(second, 12), [12, 6]);
    } finally {
      await (second ?? first).close();
    }
  });
}
