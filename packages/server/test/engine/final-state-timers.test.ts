// XState stops a machine when it reaches its final state, and with it every delayed event it had
// scheduled (v4's Interpreter.stop clears them, v5 cancels the actor's scheduled events). A stored
// timer of a finished instance is therefore dropped when it comes due: no transition, no history
// row, no new ts. One that fires before the end is delivered as always.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "finale-v5.js" : "finale-v4.js";
  describe(`delayed events and the final state (${style})`, () => {
    const machineName = `finale-${style}`;
    const at = (instanceName: string) => ({ orgId: ORG, machineName, instanceName });

    test("a delayed event still pending when the machine is done is never delivered", async () => {
      const clock = new ManualClock();
      const h = await startHarness({ clock });
      try {
        await h.deploy(fixture, style, machineName);
        for (const name of ["ends", "goes-on"]) {
          await h.engine.createInstance({ ...at(name), authContext: alice });
          await h.engine.sendEvent({ ...at(name), event: "schedule", authContext: alice });
        }
        const done = await h.engine.sendEvent({ ...at("ends"), event: "end", authContext: alice });
        assert.equal(done.done, true);
        clock.advance(2000);
        await h.engine.timersIdle();

        const events = async (name: string) =>
          (await h.store.listTransitions(at(name), { limit: 10 })).map(
            (row) => (JSON.parse(row.event) as { type: string }).type,
          );
        assert.deepEqual(await events("ends"), ["xstate.init", "schedule", "end"]);
        const read = await h.engine.readInstance({ ...at("ends"), authContext: alice });
        assert.deepEqual([read.ts, read.done], [done.ts, true], "no transition after the end");
        // The instance that did not end got its tick.
        const other = await h.engine.readInstance({ ...at("goes-on"), authContext: alice });
        assert.deepEqual(other.publicContext, { ticks: 1 });
        assert.equal(await h.store.nextTimerDue(), undefined, "no timer is left");
      } finally {
        await h.dispose();
      }
    });
  });
}
