// A delayed event to a running child (kept in its sandbox) is cancelled by its id like any
// delayed event: the child never receives it.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "child-cancel-v5.js" : "child-cancel-v4.js";
  describe(`a delayed event to a child (${style})`, () => {
    test("is not delivered once cancelled", async () => {
      // The child runs until this deadline; the requests below wait for it.
      const h = await startHarness({ clock: systemClock, settleTimeoutMs: 1_500 });
      try {
        await h.deploy(fixture, style, "child-cancel");
        const where = { orgId: ORG, machineName: "child-cancel", instanceName: "c1" };
        await h.engine.createInstance({ ...where, authContext: alice });
        const sends = ["start", "arm", "disarm"].map((event) =>
          h.engine.sendEvent({ ...where, event, authContext: alice }),
        );
        await sleep(600);
        const now = await h.engine.inspectInstance(where);
        await Promise.all(sends);
        assert.equal(now.state, "running", "the cancelled ping reached the child");
      } finally {
        await h.dispose();
      }
    });

    test("is delivered when not cancelled", async () => {
      const h = await startHarness({ clock: systemClock, settleTimeoutMs: 1_500 });
      try {
        await h.deploy(fixture, style, "child-cancel");
        const where = { orgId: ORG, machineName: "child-cancel", instanceName: "c2" };
        await h.engine.createInstance({ ...where, authContext: alice });
        const sends = ["start", "arm"].map((event) =>
          h.engine.sendEvent({ ...where, event, authContext: alice }),
        );
        await sleep(600);
        const now = await h.engine.inspectInstance(where);
        await Promise.all(sends);
        assert.equal(now.state, "ponged");
      } finally {
        await h.dispose();
      }
    });
  });
}
