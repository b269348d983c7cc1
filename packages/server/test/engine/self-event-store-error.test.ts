// An event a machine sends itself whose commit fails on a store error (a cut connection) is tried
// again at once, as a service's result is: its backstop (transition-commit.ts) would deliver it
// too, but only after the service lease, 30 s by default on PostgreSQL. Each try takes the
// backstop, so however many tries land, the event is written once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { BackstateError } from "../../src/errors.js";
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";

const alice = { sub: "alice" };
const typeOf = (json: string) => (JSON.parse(json) as { type: string }).type;

test("a self-sent event whose commit failed once on a store error is applied at once, once", async () => {
  let failures = 1;
  const wrapStore = (store: Store): Store =>
    overriding(store, {
      commitTransition: async (commit: TransitionCommit) => {
        if (typeOf(commit.transition.event) === "pong" && failures > 0) {
          failures--;
          throw new BackstateError("store-error", "storage failed: connection cut");
        }
        return store.commitTransition(commit);
      },
    });
  const h = await startHarness({
    clock: systemClock,
    wrapStore,
    serviceResultRetryDelaysMs: [10, 10, 10],
  });
  try {
    const machineName = await h.deploy("slow-pong-v5.js", "v5-import", "pinger");
    const at = { orgId: ORG, machineName, instanceName: "p" };
    await h.engine.createInstance({ ...at, authContext: alice });
    await h.engine.sendEvent({ ...at, event: { type: "ping", spinMs: 0 }, authContext: alice });
    assert.equal(failures, 0, "the pong's first commit failed");
    const history = await h.store.listTransitions(at, { limit: 10 });
    assert.deepEqual(
      history.map((t) => typeOf(t.event)),
      ["xstate.init", "ping", "pong"],
    );
  } finally {
    await h.dispose();
  }
});
