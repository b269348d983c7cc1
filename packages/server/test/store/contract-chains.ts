// Pipelined commits of one instance, for every adapter (commit-chains.ts): the engine submits
// the commit of each step of a batch before the one it was built on is written. When that one
// fails because another writer (node or process) wrote the instance first, the rest of the chain
// must fail too, even though the other writer's commit gave the instance the very sequence they
// expect.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Store } from "../../src/store/store.js";
import { createInstance, eventCommit, instanceKey, outcomeCode, seedMachine } from "./fixtures.js";

/** Runs `body` with two stores on one database; `a` cuts batches of at most `maxBatchSize`. */
export type TwoWriters = (
  maxBatchSize: number,
  body: (a: Store, b: Store) => Promise<void>,
) => Promise<void>;

export function chainContract(name: string, withTwoWriters: TwoWriters): void {
  describe(`${name}: pipelined commits of one instance`, () => {
    for (const [how, maxBatchSize] of [
      ["in one transaction", 64],
      ["across transactions", 1],
    ] as const) {
      test(`a chain fails from its first failed commit on, ${how}`, () =>
        withTwoWriters(maxBatchSize, async (a, b) => {
          await seedMachine(a, "org_a");
          const key = instanceKey("org_a", "i1");
          const id = await createInstance(a, key);
          // Writer b moves the instance from sequence 1 to 2 first.
          await b.commitTransition(eventCommit(key, id, 1, { snapshot: '"b"' }));
          // Writer a, unaware, pipelines three steps built on sequence 1: the first conflicts, and
          // the second, which expects 2, must not land on b's state.
          const outcomes = await Promise.allSettled([
            a.commitTransition(eventCommit(key, id, 1, { snapshot: '"a1"' })),
            a.commitTransition(eventCommit(key, id, 2, { snapshot: '"a2"' })),
            a.commitTransition(eventCommit(key, id, 3, { snapshot: '"a3"' })),
          ]);
          assert.deepEqual(outcomes.map(outcomeCode), ["conflict", "conflict", "conflict"]);
          const loaded = await a.loadInstance(key);
          assert.deepEqual([loaded?.sequence, loaded?.snapshot], [2, '"b"']);
          assert.equal((await a.listTransitions(key, { limit: 10 })).length, 2);

          // A new chain built on what is stored now commits whole.
          const fresh = await Promise.allSettled([
            a.commitTransition(eventCommit(key, id, 2, { snapshot: '"c2"' })),
            a.commitTransition(eventCommit(key, id, 3, { snapshot: '"c3"' })),
          ]);
          assert.deepEqual(fresh.map(outcomeCode), ["ok", "ok"]);
          assert.equal((await b.loadInstance(key))?.snapshot, '"c3"');
        }));
    }

    test("commits of other instances in the batch are not affected", () =>
      withTwoWriters(64, async (a, b) => {
        await seedMachine(a, "org_a");
        const x = instanceKey("org_a", "x");
        const y = instanceKey("org_a", "y");
        const idX = await createInstance(a, x);
        const idY = await createInstance(a, y);
        await b.commitTransition(eventCommit(x, idX, 1));
        const outcomes = await Promise.allSettled([
          a.commitTransition(eventCommit(x, idX, 1)),
          a.commitTransition(eventCommit(y, idY, 1)),
          a.commitTransition(eventCommit(x, idX, 2)),
          a.commitTransition(eventCommit(y, idY, 2)),
        ]);
        assert.deepEqual(outcomes.map(outcomeCode), ["conflict", "ok", "conflict", "ok"]);
        assert.equal((await a.loadInstance(y))?.sequence, 3);
      }));
  });
}
