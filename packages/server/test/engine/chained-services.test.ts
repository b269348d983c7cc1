// A service whose result starts another service (onDone into a state that invokes the next): the
// request that started the first waits for the second too, as it waits for any running service
// (behavior §10: settled when no service runs). It used to be answered in between: the step
// taking the first's result counted the first as ended before it counted the second as started,
// and for that moment nothing ran.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ORG, startHarness } from "../support/engine-harness.js";

test("a request waits for a service that a service's result started", async () => {
  const h = await startHarness();
  try {
    await h.deploy("chain-v5.js", "v5-import", "chain");
    const at = { orgId: ORG, machineName: "chain", instanceName: "chained" };
    await h.engine.createInstance({ ...at, authContext: { sub: "alice" } });
    const state = await h.engine.sendEvent({
      ...at,
      event: "start",
      authContext: { sub: "alice" },
    });
    assert.equal(state.state, "done");
    assert.deepEqual(state.publicContext, { steps: ["first", "second"] });
    const rows = await h.store.listTransitions(at, { limit: 10 });
    assert.deepEqual(
      rows.map((row) => (JSON.parse(row.event) as { type: string }).type),
      ["xstate.init", "start", "xstate.done.actor.first", "xstate.done.actor.second"],
    );
  } finally {
    await h.dispose();
  }
});
