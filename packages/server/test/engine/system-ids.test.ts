// v5 system.get: a child invoked with a systemId is reached through `system.get(systemId)` in a
// later event's step, as XState's own actor reaches it (not the instance itself).
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

test("v5: sendTo(system.get(systemId)) in a later step reaches the child", async () => {
  const memory = await runInMemory("system-ids-v5.js", 5);
  await memory.send({ type: "listen" });
  await memory.send({ type: "ask" });
  const expected = memory.observe();
  memory.stop();
  assert.deepEqual(expected.context, { pongs: 1, selfPings: 0, gaveUp: 0 }, "XState's own actor");

  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  try {
    const machineName = await h.deploy("system-ids-v5.js", "v5-import", "sys");
    const at = { orgId: ORG, machineName, instanceName: "one" };
    await h.engine.createInstance({ ...at, authContext: {} });
    const listening = h.engine.sendEvent({ ...at, event: "listen", authContext: {} });
    await h.engine.sendEvent({ ...at, event: "ask", authContext: {} });
    await listening;
    const admin = await h.engine.inspectInstance(at);
    assert.equal(admin.state, expected.value);
    assert.deepEqual(admin.context, expected.context);
  } finally {
    await h.dispose();
  }
});

test("v5: a reentered state's invoke takes its systemId again, and is reached by it", async () => {
  const memory = await runInMemory("system-ids-v5.js", 5);
  await memory.send({ type: "listen" });
  await memory.send({ type: "relisten" });
  await memory.send({ type: "ask" });
  const expected = memory.observe();
  memory.stop();
  assert.deepEqual(expected.context, { pongs: 1, selfPings: 0, gaveUp: 0 }, "XState's own actor");

  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  try {
    const machineName = await h.deploy("system-ids-v5.js", "v5-import", "sys");
    const at = { orgId: ORG, machineName, instanceName: "two" };
    await h.engine.createInstance({ ...at, authContext: {} });
    const listening = h.engine.sendEvent({ ...at, event: "listen", authContext: {} });
    // Not awaited: each answer waits for the instance to settle, which the listener keeps from.
    const relistening = h.engine.sendEvent({ ...at, event: "relisten", authContext: {} });
    await h.engine.sendEvent({ ...at, event: "ask", authContext: {} });
    await Promise.all([listening, relistening]);
    const admin = await h.engine.inspectInstance(at);
    assert.equal(admin.state, expected.value);
    assert.deepEqual(admin.context, expected.context);
  } finally {
    await h.dispose();
  }
});
