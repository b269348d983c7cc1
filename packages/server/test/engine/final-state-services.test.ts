// XState stops a machine when it reaches its final state, and with it every service still
// running (v4's Interpreter.stop, v5's stopChildren): a service invoked at the root keeps no
// finished instance busy. The event that ended the machine is answered at once, and no service
// is left pending for it.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "root-invoke-v5.js" : "root-invoke-v4.js";
  describe(`services of a machine that reaches its final state (${style})`, () => {
    test("stop with it: the final event is answered at once, nothing stays pending", async () => {
      const h = await startHarness();
      try {
        const machineName = await h.deploy(fixture, style, `root-invoke-${style}`);
        const where = { orgId: ORG, machineName, instanceName: "a" };
        // The creation itself waits for the root service; the manual clock never ends it.
        void h.engine.createInstance({ ...where, authContext: alice }).catch(() => {});
        for (let i = 0; i < 200 && !(await h.store.loadInstance(where)); i++) await sleep(10);
        const answered = await Promise.race([
          h.engine.sendEvent({ ...where, event: "end", authContext: alice }),
          sleep(3_000).then(() => "no answer"),
        ]);
        assert.notEqual(answered, "no answer", "the final event was answered");
        assert.equal((answered as { done: boolean }).done, true);
        assert.deepEqual((await h.store.loadInstance(where))?.pendingServices, []);
      } finally {
        await h.dispose();
      }
    });
  });
}
