// v5: a spawned child that has finished frees its systemId (XState unregisters an actor once it
// is done), so a later step may spawn another child under that systemId.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

test("v5: a finished child's systemId can be taken by a child spawned later", async () => {
  const memory = await runInMemory("system-id-reuse-v5.js", 5);
  for (let i = 0; i < 3; i++) {
    await memory.send({ type: "start" });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const expected = memory.observe();
  memory.stop();
  assert.deepEqual(expected.context, { started: 3, finished: 3 }, "XState's own actor");

  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  try {
    const machineName = await h.deploy("system-id-reuse-v5.js", "v5-import", "jobs");
    const at = { orgId: ORG, machineName, instanceName: "one" };
    await h.engine.createInstance({ ...at, authContext: {} });
    for (let i = 0; i < 3; i++) {
      const outcome = await h.engine.sendEvent({ ...at, event: "start", authContext: {} }).then(
        () => "ok",
        (err: Error) => err.message,
      );
      assert.equal(outcome, "ok", `start ${i + 1}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const admin = await h.engine.inspectInstance(at);
    assert.deepEqual(admin.context, expected.context);
  } finally {
    await h.dispose();
  }
});
