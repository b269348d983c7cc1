// An event whose commit landed is answered as written even when the store fails afterwards
// (README: "a commit that landed is answered as written"): a client told its event failed sends it
// again, and it applies twice. Found by a three-node soak on PostgreSQL whose connections were cut
// now and then: events that started a service were answered 503 store-error when the read of the
// settled state after the service failed, though they were in the history.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BackstateError } from "../../src/errors.js";
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";

const alice = { sub: "alice" };

test("an event that started a service is answered as written when the read of its settled state fails", async () => {
  // From the commit of "start" on, every read of the instance row fails, as on a cut connection.
  let reads = "fine";
  const wrapStore = (store: Store): Store =>
    overriding(store, {
      commitTransition: async (commit: TransitionCommit) => {
        const result = await store.commitTransition(commit);
        const event = JSON.parse(commit.transition.event) as { type: string };
        if (event.type === "start") reads = "failing";
        return result;
      },
      loadInstance: (key) =>
        reads === "failing"
          ? Promise.reject(new BackstateError("store-error", "storage failed: connection cut"))
          : store.loadInstance(key),
    });
  const h = await startHarness({ wrapStore });
  try {
    const machineName = await h.deploy("workflow-v5.js", "v5-import", "workflow");
    const at = { orgId: ORG, machineName, instanceName: "served" };
    // The service takes a while, so the event waits for it to settle and then reads the state.
    await h.engine.createInstance({
      ...at,
      authContext: alice,
      context: { public: { count: 1, note: "n" }, delayMs: 50 },
    });
    const state = await h.engine.sendEvent({ ...at, event: "start", authContext: alice });
    reads = "fine";
    // Answered with what this node last wrote: the service's result, committed.
    assert.equal(state.state, "idle");
    assert.equal((state.publicContext as { count: number }).count, 4);
    const rows = await h.store.listTransitions(at, { limit: 10 });
    assert.deepEqual(
      rows.map((row) => (JSON.parse(row.event) as { type: string }).type),
      ["xstate.init", "start", "xstate.done.actor.double"],
    );
  } finally {
    await h.dispose();
  }
});
