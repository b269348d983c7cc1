// Deleting an instance stops the services it had running: they belong to nothing any more, and an
// instance created again under the same name must not wait for them (or be taken to run them).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  // The engine's clock is a manual one that this test never moves: the old service's settle
  // deadline never passes, so a creation that waited for it would never finish.
  h = await startHarness({ settleTimeoutMs: 3_000 });
  await h.deploy("workflow-v5.js", "v5-import", "deleted");
});
after(() => h.dispose());

test(
  "an instance created again after a delete does not wait for the deleted one's services",
  { timeout: 60_000 },
  async () => {
    const where = { orgId: ORG, machineName: "deleted", instanceName: "d1" };
    await h.engine.createInstance({ ...where, authContext: alice });
    // Its service never ends: the request waits for the deadline, or the delete.
    const hung = h.engine
      .sendEvent({ ...where, event: "hang", authContext: alice })
      .catch((err: unknown) => err);
    // Its service starts once the step into "hanging" is committed.
    while ((await h.engine.inspectInstance(where)).state !== "hanging") {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await h.engine.deleteInstance(where);
    const creating = h.engine.createInstance({ ...where, authContext: alice });
    // A generous bound in real time, only so that a creation stuck behind the deadline fails the
    // test rather than hanging it (the clock the deadline is measured on never moves).
    let stuck: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      creating,
      new Promise<"stuck">((resolve) => (stuck = setTimeout(() => resolve("stuck"), 20_000))),
    ]);
    clearTimeout(stuck);
    assert.notEqual(
      outcome,
      "stuck",
      "the new instance's creation waited for the deleted one's service",
    );
    assert.equal((await creating).state, "idle");
    await hung;
  },
);
