// Leaving the state that invoked a service stops it (XState v5), so the instance is settled at
// once: no settle deadline is waited out, and no error event is owed for the service later.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  // The deadline (1 s) comes before the service's end (3 s): a service left running would be
  // stopped there, and its error event delivered before the next event.
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 1_000 });
  await h.deploy("leave-v5.js", "v5-import", "leave");
});
after(() => h.dispose());

test("an event that leaves a state stops its service: nothing is owed for it later", async () => {
  const where = { orgId: ORG, machineName: "leave", instanceName: "left" };
  await h.engine.createInstance({ ...where, authContext: alice });
  const started = h.engine.sendEvent({ ...where, event: "start", authContext: alice });
  const left = await h.engine.sendEvent({ ...where, event: "leave", authContext: alice });
  await started;
  assert.equal(left.state, "idle");
  assert.deepEqual((await h.store.loadInstance(where))?.pendingServices, []);
  await h.engine.sendEvent({ ...where, event: "ping", authContext: alice });
  const events = (await h.store.listTransitions(where, { limit: 10 })).map(
    (row) => (JSON.parse(row.event) as { type: string }).type,
  );
  assert.deepEqual(events.slice(1), ["start", "leave", "ping"]);
});
