// An XState 4 callback service written as an async function is, to XState 4's interpreter, the
// promise it returns: its resolution is `done.invoke.<id>`. Taken for a callback that never ends,
// it kept its instance waiting (its request unanswered) until the settle deadline, which then
// delivered an error event for a service that had succeeded.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { ORG, startHarness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

test("an async callback service (XState 4) ends with done.invoke and its value", async () => {
  const h = await startHarness();
  try {
    const machineName = await h.deploy("async-callback-v4.js", "v4-cli", "async-callback");
    const where = { orgId: ORG, machineName, instanceName: "a" };
    await h.engine.createInstance({ ...where, authContext: alice });
    // The manual clock never reaches the settle deadline: a service that never ends hangs here.
    const answered = await Promise.race([
      h.engine.sendEvent({ ...where, event: "go", authContext: alice }),
      sleep(5_000).then(() => "no answer" as const),
    ]);
    if (answered === "no answer") assert.fail("the request waited for a service that had ended");
    assert.equal(answered.state, "finished");
    assert.deepEqual(answered.publicContext, { progress: 1, result: 7 });
  } finally {
    await h.dispose();
  }
});
