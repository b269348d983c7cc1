// A sandbox call's budget (callTimeoutMs) is the time it may run, not the time it waits in its
// process behind other calls: one process runs one step at a time, and each answer leaves before
// the next step runs, so steps each well under the budget must all pass, however many are sent
// together. Otherwise a step is charged (and a pong held back for) the time of those before it,
// and the process is taken down.
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

/** Sends one `work` event costing `ms` of CPU to each instance at once: what each answered. */
async function workTogether(names: string[], ms: number): Promise<unknown[]> {
  for (const instanceName of names) {
    await h.engine.createInstance({
      orgId: ORG,
      machineName: "slow",
      instanceName,
      authContext: anyone,
    });
  }
  return Promise.all(
    names.map((instanceName) =>
      h.engine
        .sendEvent({
          orgId: ORG,
          machineName: "slow",
          instanceName,
          event: { type: "work", ms },
          authContext: anyone,
        })
        .then(
          (state) => (state.publicContext as { done: number }).done,
          (err: Error & { code?: string }) => err.code ?? err.message,
        ),
    ),
  );
}

test("six 300 ms steps sent together under a 1 s budget all pass", async () => {
  const names = Array.from({ length: 6 }, (_, i) => `s${i}`);
  assert.deepEqual(
    await workTogether(names, 300),
    names.map(() => 1),
  );
  assert.equal(h.pool.stats.timeouts + h.pool.stats.unresponsive, 0, JSON.stringify(h.pool.stats));
});

test("three 650 ms steps sent together under a 1 s budget all pass", async () => {
  // Each longer than half the budget: one charged for the one before it overruns.
  const names = ["a", "b", "c"];
  assert.deepEqual(
    await workTogether(names, 650),
    names.map(() => 1),
  );
  assert.equal(h.pool.stats.timeouts + h.pool.stats.unresponsive, 0, JSON.stringify(h.pool.stats));
});
