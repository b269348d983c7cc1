// A delayed event armed and cancelled in the same macrostep (entry arms it, an eventless
// transition leaves the state, its exit cancels it) must never be delivered, as in XState.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "cancel-in-step-v5.js" : "cancel-in-step-v4.js";
  describe(`a timer cancelled in the step that armed it (${style})`, () => {
    for (const event of ["go", "goAfter"]) {
      test(`never fires (${event})`, async () => {
        const h = await startHarness({ clock: new ManualClock() });
        try {
          await h.deploy(fixture, style, "cancel-in-step");
          const where = { orgId: ORG, machineName: "cancel-in-step", instanceName: event };
          await h.engine.createInstance({ ...where, authContext: alice });
          const sent = await h.engine.sendEvent({ ...where, event, authContext: alice });
          assert.equal(sent.state, "done");
          assert.equal(await h.store.nextTimerDue(), undefined, "no timer is left armed");
          (h.clock as ManualClock).advance(5_000);
          await h.engine.timersIdle();
          const events = (await h.store.listTransitions(where, { limit: 10 })).map(
            (row) => (JSON.parse(row.event) as { type: string }).type,
          );
          assert.deepEqual(events, ["xstate.init", event]);
          const state = await h.engine.readInstance({ ...where, authContext: alice });
          assert.equal(state.state, "done");
        } finally {
          await h.dispose();
        }
      });
    }
  });
}
