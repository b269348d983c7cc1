// A service's result whose instance is not in the node's memory (right after a reconnect, which
// clears it) is applied on a fresh read of the instance. A store error on that read dropped the
// result, although its commit would have been tried again (result-commit-retries.ts): the read is
// now tried again the same way.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { BackstateError } from "../../src/errors.js";
import type { Store } from "../../src/store/store.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";
import { startServiceGate } from "../support/service-gate.js";

const alice = { sub: "alice" };

test(
  "a service result whose instance read fails once on a store error is still applied",
  { timeout: 30_000 },
  async () => {
    let failingLoads = 0;
    let lastLoad: Promise<unknown> = Promise.resolve();
    const wrapStore = (store: Store): Store =>
      overriding(store, {
        loadInstance: (key) => {
          if (failingLoads > 0) {
            failingLoads--;
            return Promise.reject(
              new BackstateError("store-error", "storage failed: connection cut"),
            );
          }
          const load = store.loadInstance(key);
          lastLoad = load.catch(() => {});
          return load;
        },
      });
    const gate = await startServiceGate();
    const h = await startHarness({
      clock: systemClock,
      wrapStore,
      serviceResultRetryDelaysMs: [10, 10, 10],
      // The service waits on the test's gate: a private address.
      allowPrivateNetworkFetch: true,
    });
    try {
      const machineName = await h.deploy("workflow-v5.js", "v5-import", "doubler");
      const at = { orgId: ORG, machineName, instanceName: "d" };
      const context = { gateUrl: `${gate.url}double` };
      await h.engine.createInstance({ ...at, context, authContext: alice });
      const started = h.engine.sendEvent({ ...at, event: "start", authContext: alice });
      await gate.reached("double");
      // A reconnect: the node forgets what it remembered of every instance (and looks up those it
      // runs services for, a read that must not take the failure meant for the result's; it
      // starts within the call).
      h.engine.missedChangesElsewhere();
      await lastLoad;
      failingLoads = 1;
      gate.open("double");
      // Answered once the service's result is applied; a result dropped leaves the request
      // waiting until the test's time limit.
      const answered = await started;
      assert.equal(failingLoads, 0, "the result's read of the instance failed once");
      assert.equal(answered.state, "idle");
      assert.deepEqual(answered.publicContext, { count: 2, note: "default" });
    } finally {
      await h.dispose();
      await gate.close();
    }
  },
);
