// XState 4: a child machine's `escalate` reaches its parent as the child's error.platform event,
// which the invoke's onError takes. The engine passed it on as the `xstate.error` the child sent,
// which nothing handles: the instance stayed with the child until its settle deadline.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

test("v4: an escalated error reaches the invoke's onError, as in XState", async () => {
  const memory = await runInMemory("escalate-v4.js", 4);
  await memory.send({ type: "work" });
  await memory.send({ type: "work" });
  const expected = memory.observe();
  memory.stop();
  assert.equal(expected.value, "failed", "XState's own interpreter");

  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 3_000 });
  try {
    const machineName = await h.deploy("escalate-v4.js", "v4-cli", "escalating");
    const at = { orgId: ORG, machineName, instanceName: "one" };
    await h.engine.createInstance({ ...at, authContext: {} });
    await h.engine.sendEvent({ ...at, event: "work", authContext: {} });
    const state = await h.engine.sendEvent({ ...at, event: "work", authContext: {} });
    assert.equal(state.state, expected.value);
    assert.deepEqual((await h.engine.inspectInstance(at)).context, expected.context);
  } finally {
    await h.dispose();
  }
});
