// v5: a state's entry action that sends to the child the same state invokes (sendTo("kid") with
// invoke { id: "kid" }) reaches that child, as in XState's own actor, at creation and later.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

test("v5: an entry sendTo the state's own invoke reaches the child", async () => {
  const memory = await runInMemory("entry-send-v5.js", 5);
  const expectedAtCreation = memory.observe();
  await memory.send({ type: "again" });
  const expectedAfterAgain = memory.observe();
  memory.stop();
  assert.equal(expectedAtCreation.value, "quiet", "XState's own actor");
  assert.deepEqual(expectedAfterAgain.context, { heard: ["hello", "hello"] }, "XState's own actor");

  // A short settle deadline: an event lost on its way to the child leaves the instance waiting.
  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 2_000 });
  try {
    const machineName = await h.deploy("entry-send-v5.js", "v5-import", "talk");
    const at = { orgId: ORG, machineName, instanceName: "one" };
    const created = await h.engine.createInstance({ ...at, authContext: {} });
    assert.equal(created.state, expectedAtCreation.value);
    const again = await h.engine.sendEvent({ ...at, event: "again", authContext: {} });
    assert.equal(again.state, expectedAfterAgain.value);
    assert.deepEqual((await h.engine.inspectInstance(at)).context, expectedAfterAgain.context);
  } finally {
    await h.dispose();
  }
});
