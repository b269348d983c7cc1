// A re-entered invoke keeps its id: the result of the run it replaced, already on its way to the
// engine when the re-entry commits, must not finish the new run.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { slowingCommits } from "../support/slow-commits.js";

const RESTART_COMMIT_DELAY_MS = 400;

let h: Harness;
let slowRestartCommits = false;

before(async () => {
  h = await startHarness({
    clock: systemClock,
    wrapStore: (store) =>
      slowingCommits(
        store,
        (commit) => slowRestartCommits && commit.transition.event.includes('"restart"'),
        RESTART_COMMIT_DELAY_MS,
      ),
  });
  await h.deploy("reenter-v5.js", "v5-import", "reenter");
});
after(() => h.dispose());

test("a replaced run's result, arriving while its replacement commits, does not finish it", async () => {
  const at = { orgId: ORG, machineName: "reenter", instanceName: "x" };
  const alice = { sub: "alice" };
  // Run 1 answers after 400 ms; the restart is sent at 200 ms and its commit takes 400 ms, so
  // run 1's result reaches the engine while the restart (which starts run 2) is committing.
  const created = h.engine.createInstance({ ...at, authContext: alice });
  await new Promise((resolve) => setTimeout(resolve, 200));
  slowRestartCommits = true;
  const settled = await h.engine.sendEvent({ ...at, event: "restart", authContext: alice });
  slowRestartCommits = false;
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
