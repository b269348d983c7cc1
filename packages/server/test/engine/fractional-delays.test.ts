// A delay is whatever number the machine computes (a jittered backoff, seconds × 1000), not
// always a whole millisecond; the stores keep due times as whole epoch milliseconds.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "../support/engine-harness.js";

test("a delay of a fractional number of milliseconds arms its timer, which fires once, not early", async () => {
  const h = await startHarness({ clock: new ManualClock() });
  try {
    await h.deploy("jitter-v5.js", "v5-import", "jitter");
    const at = { orgId: ORG, machineName: "jitter", instanceName: "j1" };
    const context = { public: { fired: 0 }, delayMs: 250.5 };
    await h.engine.createInstance({ ...at, context, authContext: {} });
    const waiting = await h.engine.sendEvent({ ...at, event: "wait", authContext: {} });
    assert.equal(waiting.state, "waiting");
    const advance = async (ms: number) => {
      (h.clock as ManualClock).advance(ms);
      await h.engine.timersIdle();
    };
    const read = () => h.engine.readInstance({ ...at, authContext: {} });
    await advance(250);
    assert.equal((await read()).state, "waiting", "not before its delay has passed");
    await advance(1);
    const fired = await read();
    assert.equal(fired.state, "idle");
    assert.deepEqual(fired.publicContext, { fired: 1 });
    await advance(60_000);
    assert.deepEqual((await read()).publicContext, { fired: 1 }, "fires once");
  } finally {
    await h.dispose();
  }
});
