// v5 onSnapshot: a child invoked with onSnapshot sends its parent each snapshot it takes while
// active, as XState's own actor does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

test("v5: an invoke's onSnapshot hears each snapshot the child takes", async () => {
  const memory = await runInMemory("child-snapshots-v5.js", 5);
  await memory.send({ type: "go" });
  await memory.advance(20);
  await memory.advance(20);
  const expected = memory.observe();
  memory.stop();
  assert.deepEqual(
    expected.context,
    { seen: ["one", "two"], result: "done" },
    "XState's own actor",
  );

  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  try {
    const machineName = await h.deploy("child-snapshots-v5.js", "v5-import", "snaps");
    const at = { orgId: ORG, machineName, instanceName: "one" };
    await h.engine.createInstance({ ...at, authContext: {} });
    await h.engine.sendEvent({ ...at, event: "go", authContext: {} });
    const admin = await h.engine.inspectInstance(at);
    assert.equal(admin.state, expected.value);
    assert.deepEqual(admin.context, expected.context);
  } finally {
    await h.dispose();
  }
});
