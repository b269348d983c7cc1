// Deleting an instance stops the services it had running: they belong to nothing any more, and an
// instance created again under the same name must not wait for them (or be taken to run them).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 3_000 });
  await h.deploy("workflow-v5.js", "v5-import", "deleted");
});
after(() => h.dispose());

test("an instance created again after a delete does not wait for the deleted one's services", async () => {
  const where = { orgId: ORG, machineName: "deleted", instanceName: "d1" };
  await h.engine.createInstance({ ...where, authContext: alice });
  // Its service never ends: the request waits for the deadline, or the delete.
  const hung = h.engine
    .sendEvent({ ...where, event: "hang", authContext: alice })
    .catch((err: unknown) => err);
  await new Promise((resolve) => setTimeout(resolve, 200));
  await h.engine.deleteInstance(where);
  const started = Date.now();
  const created = await h.engine.createInstance({ ...where, authContext: alice });
  const waited = Date.now() - started;
  assert.equal(created.state, "idle");
  assert.ok(waited < 1_500, `the new instance's creation waited ${waited} ms`);
  await hung;
});
