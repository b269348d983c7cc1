// A sandbox call's budget (callTimeoutMs) is the time it may run, not the time it waits in its
// process behind other calls: one process runs one step at a time, so ten events to ten
// instances of one org, each costing 300 ms of CPU (under the 1,000 ms budget), must all pass.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const anyone = { sub: "u" };
let h: Harness;

before(async () => {
  h = await startHarness({ clock: systemClock, callTimeoutMs: 1000, sandboxSize: 1 });
  await h.deploy("slow-step-v5.js", "v5-import", "slow");
});
after(() => h.dispose());

test("steps queued in one sandbox process are not blamed for the time they waited", async () => {
  const names = Array.from({ length: 6 }, (_, i) => `s${i}`);
  for (const instanceName of names) {
    await h.engine.createInstance({
      orgId: ORG,
      machineName: "slow",
      instanceName,
      authContext: anyone,
    });
  }
  const outcomes = await Promise.all(
    names.map((instanceName) =>
      h.engine
        .sendEvent({
          orgId: ORG,
          machineName: "slow",
          instanceName,
          event: { type: "work", ms: 300 },
          authContext: anyone,
        })
        .then(
          (state) => (state.publicContext as { done: number }).done,
          (err: Error & { code?: string }) => err.code ?? err.message,
        ),
    ),
  );
  assert.deepEqual(
    outcomes,
    names.map(() => 1),
  );
  assert.equal(h.pool.stats.timeouts + h.pool.stats.unresponsive, 0, JSON.stringify(h.pool.stats));
});
