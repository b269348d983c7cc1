// A re-entered invoke keeps its id: the result of the run it replaced, already on its way to the
// engine when the re-entry commits, must not finish the new run.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { StoreHolds } from "../support/held-writes.js";
import { startServiceGate, type ServiceGate } from "../support/service-gate.js";

let h: Harness;
let gate: ServiceGate;
const holds = new StoreHolds();

before(async () => {
  gate = await startServiceGate();
  h = await startHarness({
    clock: systemClock,
    // The runs wait on the test's gate: a private address.
    allowPrivateNetworkFetch: true,
    wrapStore: (store) => holds.wrap(store),
  });
  await h.deploy("reenter-v5.js", "v5-import", "reenter");
});
after(async () => {
  await h.dispose();
  await gate.close();
});

/** Resolves when the engine has been handed the service result whose output is `output`. */
function resultReceived(output: string): Promise<void> {
  return new Promise((resolve) => {
    // Listeners are called in turn, the engine's first: once this one is, the engine has the
    // result (and queued it behind whatever step the instance is in).
    h.runtime.onServiceEvent((_org, _ref, _service, _run, event) => {
      if ((event as { output?: unknown }).output === output) resolve();
    });
  });
}

test("a replaced run's result, arriving while its replacement commits, does not finish it", async () => {
  const at = { orgId: ORG, machineName: "reenter", instanceName: "x" };
  const alice = { sub: "alice" };
  // Each run answers when the test opens its gate (`run-1`, `run-2`).
  const context = { public: { run: 1, result: null }, gateUrl: gate.url };
  const created = h.engine.createInstance({ ...at, context, authContext: alice });
  await gate.reached("run-1");
  // The restart (which starts run 2) is held at its commit while run 1's result reaches the
  // engine.
  const restartCommit = holds.hold("commitTransition", (commit) =>
    commit.transition.event.includes('"restart"'),
  );
  const restarted = h.engine.sendEvent({ ...at, event: "restart", authContext: alice });
  await restartCommit.reached;
  const run1Result = resultReceived("result of run 1");
  gate.open("run-1");
  await run1Result;
  restartCommit.release();
  await gate.reached("run-2");
  gate.open("run-2");
  const settled = await restarted;
  await created;
  assert.deepEqual(settled.publicContext, { run: 2, result: "result of run 2" });
  const events = (await h.store.listTransitions(at, { limit: 10 })).map(
    (t) => (JSON.parse(t.event) as { type: string; output?: string }).output ?? "",
  );
  assert.deepEqual(
    events.filter((output) => output !== ""),
    ["result of run 2"],
    "only run 2's result was delivered",
  );
});
