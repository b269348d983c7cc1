// An event the machine sends itself (XState 4's send() to itself) whose commit landed but whose
// answer was lost (a store error the store could not settle) is not stepped again on a fresh read,
// where it would be written a second time (it was: a "bounce" that sends "inc" counted 2). Its
// commit is tried again as it is, finds the instance moved on, and reads in the history that its
// first try landed. On SQLite and on PostgreSQL.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { BackstateError } from "../../src/errors.js";
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { ORG, startHarness, type Harness, type HarnessOptions } from "../support/engine-harness.js";
import { TestSchemas, testDatabaseUrl } from "../store/postgres-support.js";
import { overriding } from "../support/overriding-store.js";

const alice = { sub: "alice" };

const targets: Array<{ name: string; place: () => Partial<HarnessOptions> }> = [
  { name: "SQLite", place: () => ({}) },
];
const url = testDatabaseUrl("self-sent events after lost answers (postgres)");
if (url !== undefined) {
  const schemas = new TestSchemas(url);
  targets.push({
    name: "PostgreSQL",
    place: () => ({ databaseUrl: url, postgres: { schema: schemas.fresh(), poolSize: 4 } }),
  });
}

/** The store, but the first commit of an "inc" is written and then answered with a store error. */
function losingFirstInc(state: { lost: boolean }): (store: Store) => Store {
  return (store) =>
    overriding(store, {
      commitTransition: async (commit: TransitionCommit) => {
        const result = await store.commitTransition(commit);
        const type = (JSON.parse(commit.transition.event) as { type: string }).type;
        if (type === "inc" && !state.lost) {
          state.lost = true;
          throw new BackstateError("store-error", "storage failed: connection cut");
        }
        return result;
      },
    });
}

for (const target of targets) {
  describe(`self-sent events after lost answers (${target.name})`, () => {
    let h: Harness | undefined;
    after(() => h?.dispose());

    test("a self-sent event whose commit landed, its answer lost, is written once", async () => {
      const state = { lost: false };
      h = await startHarness({ ...target.place(), wrapStore: losingFirstInc(state) });
      await h.deploy("workflow-v4.js", "v4-cli", "bouncer");
      const at = { orgId: ORG, machineName: "bouncer", instanceName: "x" };
      await h.engine.createInstance({ ...at, authContext: alice });
      await h.engine.sendEvent({ ...at, event: "bounce", authContext: alice });
      assert.ok(state.lost, "the self-sent inc's answer was lost");
      const next = await h.engine.sendEvent({ ...at, event: "inc", authContext: alice });
      assert.equal((next.publicContext as { count: number }).count, 2);
      const rows = await h.store.listTransitions(at, { limit: 10 });
      assert.deepEqual(
        rows.map((row) => (JSON.parse(row.event) as { type: string }).type),
        ["xstate.init", "bounce", "inc", "inc"],
      );
      assert.ok(
        !h.logs.some((log) => log.message.includes("may not have been applied")),
        "found written by its next try, not logged as maybe lost",
      );
    });
  });
}
