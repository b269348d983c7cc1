// A machine's `log` action writes to the machine console, in XState 5 as in XState 4: the step's
// actor scope had a logger that dropped everything, so v5 machines logged nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";

for (const [style, fixture] of [
  ["v5-import", "log-action-v5.js"],
  ["v4-cli", "log-action-v4.js"],
] as Array<[BundleStyle, string]>) {
  test(`a log action writes its label and value to the machine console (${style})`, async () => {
    const h = await startHarness({ clock: systemClock });
    try {
      const machineName = await h.deploy(fixture, style, `log-action-${style}`);
      const where = { orgId: ORG, machineName, instanceName: "a" };
      await h.engine.createInstance({ ...where, authContext: {} });
      await h.engine.sendEvent({ ...where, event: "tell", authContext: {} });
      await h.engine.sendEvent({ ...where, event: "tell", authContext: {} });
      let lines: string[] = [];
      for (let i = 0; i < 100 && lines.length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        lines = h.logs
          .map((line) => line.message)
          .filter((message) => message.startsWith("machine console:") && /told/.test(message));
      }
      assert.equal(lines.length, 2, JSON.stringify(lines));
      assert.match(lines[0]!, /teller.*told 1/);
      assert.match(lines[1]!, /teller.*told 2/);
    } finally {
      await h.dispose();
    }
  });
}
