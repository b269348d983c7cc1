// The error events owed for lost services are delivered one after another before the next event.
// One of them may start a lost service afresh (its handler re-enters the state that invokes it):
// that service runs again, and no error is owed for it any more. Its old run's error, delivered
// anyway, took the transition meant for a failure of the run that had just started.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "twin-services-v5.js" : "twin-services-v4.js";
  describe(`lost services started again by an earlier one's error event (${style})`, () => {
    test("are not sent the error of their old run", async () => {
      const clock = new ManualClock();
      const h = await startHarness({ clock, settleTimeoutMs: 1_000 });
      try {
        const machineName = await h.deploy(fixture, style, `twins-${style}`);
        const where = { orgId: ORG, machineName, instanceName: "t" };
        await h.engine.createInstance({ ...where, authContext: alice });
        const going = h.engine.sendEvent({ ...where, event: "go", authContext: alice });
        while ((await h.engine.inspectInstance(where)).state !== "working") {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        // Both services run until the settle deadline stops them: each is owed its error.
        clock.advance(1_000);
        assert.equal((await going).state, "working");
        const poked = h.engine.sendEvent({ ...where, event: "poke", authContext: alice });
        // a's error re-enters "working": a and b run again, and the request waits for them
        // (until their own deadline).
        const types = async () =>
          (await h.store.listTransitions(where, { limit: 20 })).map(
            (row) => (JSON.parse(row.event) as { type: string }).type,
          );
        while (!(await types()).includes("poke")) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        clock.advance(1_000);
        await poked;
        const errorOf = (id: string) =>
          style.startsWith("v5") ? `xstate.error.actor.${id}` : `error.platform.${id}`;
        assert.deepEqual(await types(), ["xstate.init", "go", errorOf("a"), "poke"]);
        const admin = await h.engine.inspectInstance(where);
        assert.equal(admin.state, "working");
        assert.deepEqual((admin.context as { public: unknown }).public, { retries: 1, pokes: 1 });
      } finally {
        await h.dispose();
      }
    });
  });
}
