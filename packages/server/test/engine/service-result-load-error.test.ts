// A service's result whose instance is not in the node's memory (right after a reconnect, which
// clears it) is applied on a fresh read of the instance. A store error on that read dropped the
// result, although its commit would have been tried again (result-commit-retries.ts): the read is
// now tried again the same way.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { systemClock } from "../../src/engine/clock.js";
import { BackstateError } from "../../src/errors.js";
import type { Store } from "../../src/store/store.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";

const alice = { sub: "alice" };

test("a service result whose instance read fails once on a store error is still applied", async () => {
  let failingLoads = 0;
  const wrapStore = (store: Store): Store =>
    overriding(store, {
      loadInstance: (key) => {
        if (failingLoads > 0) {
          failingLoads--;
          return Promise.reject(
            new BackstateError("store-error", "storage failed: connection cut"),
          );
        }
        return store.loadInstance(key);
      },
    });
  const h = await startHarness({
    clock: systemClock,
    wrapStore,
    serviceResultRetryDelaysMs: [10, 10, 10],
  });
  try {
    const machineName = await h.deploy("workflow-v5.js", "v5-import", "doubler");
    const at = { orgId: ORG, machineName, instanceName: "d" };
    await h.engine.createInstance({ ...at, context: { delayMs: 400 }, authContext: alice });
    const started = h.engine.sendEvent({ ...at, event: "start", authContext: alice });
    await sleep(100);
    // A reconnect: the node forgets what it remembered of every instance (and looks up those it
    // runs services for, a read that must not take the failure meant for the result's).
    h.engine.missedChangesElsewhere();
    await sleep(100);
    failingLoads = 1;
    const answered = await Promise.race([started, sleep(5_000).then(() => undefined)]);
    assert.equal(failingLoads, 0, "the result's read of the instance failed once");
    assert.ok(answered, "the request was answered once the service's result was applied");
    assert.equal(answered.state, "idle");
    assert.deepEqual(answered.publicContext, { count: 2, note: "default" });
  } finally {
    await h.dispose();
  }
});
