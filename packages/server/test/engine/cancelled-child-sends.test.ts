// A delayed event to a running child (kept in its sandbox) is cancelled by its id like any
// delayed event: the child never receives it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

/**
 * Sends `events` to a fresh instance of the fixture (each waits, as requests do, for the
 * instance to settle: here, for a pong to end the child) and returns the instance as it settled.
 */
async function afterEvents(h: Harness, instanceName: string, events: string[]) {
  const where = { orgId: ORG, machineName: "child-cancel", instanceName };
  await h.engine.createInstance({ ...where, authContext: alice });
  await Promise.all(
    events.map((event) => h.engine.sendEvent({ ...where, event, authContext: alice })),
  );
  return h.engine.inspectInstance(where);
}

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "child-cancel-v5.js" : "child-cancel-v4.js";
  describe(`a delayed event to a child (${style})`, () => {
    // The requests wait for the child's pong: a bound for a broken build (no pong ever), not a
    // timing.
    const options = { clock: systemClock, settleTimeoutMs: 10_000 };

    test("is not delivered once cancelled", async () => {
      const h = await startHarness(options);
      try {
        await h.deploy(fixture, style, "child-cancel");
        // Ping 2 is armed after ping 1 with the same delay, so it leaves after ping 1 would
        // have: the first pong being ping 2's shows ping 1 never reached the child.
        const now = await afterEvents(h, "c1", ["start", "arm", "disarm", "armAgain"]);
        assert.equal(now.state, "ponged", "no pong ended the child");
        assert.deepEqual(
          now.context,
          { public: { pong: 2 } },
          "the cancelled ping reached the child",
        );
      } finally {
        await h.dispose();
      }
    });

    test("is delivered when not cancelled", async () => {
      const h = await startHarness(options);
      try {
        await h.deploy(fixture, style, "child-cancel");
        const now = await afterEvents(h, "c2", ["start", "arm"]);
        assert.equal(now.state, "ponged");
        assert.deepEqual(now.context, { public: { pong: 1 } });
      } finally {
        await h.dispose();
      }
    });
  });
}
