// A child spawned from inline logic (`spawnChild(fromPromise(…))`, `spawn(fromPromise(…))` in an
// assign) is persisted by XState as its logic object, which JSON cannot keep: the instance's next
// step, from the stored snapshot, failed, and so did every one after (for a child machine, even
// the spawning step). Each spawn, then another event, must leave the instance as a plain XState
// actor is left.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

test("v5: children spawned from inline logic run, answer, and leave the instance usable", async () => {
  const h = await startHarness({ clock: systemClock, settleTimeoutMs: 3_000 });
  try {
    const machineName = await h.deploy("inline-children-v5.js", "v5-import", "inline-children");
    for (const spawning of ["anonymous", "named", "inAssign", "machine"]) {
      const memory = await runInMemory("inline-children-v5.js", 5);
      const at = { orgId: ORG, machineName, instanceName: spawning };
      try {
        await h.engine.createInstance({ ...at, authContext: {} });
        for (const type of [spawning, "ping"]) {
          await memory.send({ type });
          await h.engine.sendEvent({ ...at, event: type, authContext: {} });
        }
        const expected = (memory.observe().context as { log: unknown[] }).log;
        assert.equal(expected.length, 2, `XState's own actor (${spawning})`);
        const context = (await h.engine.inspectInstance(at)).context as { log: unknown[] };
        assert.deepEqual(context.log, expected, spawning);
      } finally {
        memory.stop();
      }
    }
  } finally {
    await h.dispose();
  }
});
