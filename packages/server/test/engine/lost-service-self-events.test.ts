// A lost service's error event is a step like any other: the events its machine sends itself
// there (XState v4 `send`) are processed right after it, before the event that found it lost.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 300 });
  await h.deploy("lost-recover-v4.js", "v4-cli", "lost-recover");
});
after(() => h.dispose());

test("events a lost service's error step sends the machine itself are not dropped", async () => {
  const where = { orgId: ORG, machineName: "lost-recover", instanceName: "r1" };
  await h.engine.createInstance({ ...where, authContext: alice });
  const hung = await h.engine.sendEvent({ ...where, event: "hang", authContext: alice });
  assert.equal(hung.state, "hanging");
  const next = await h.engine.sendEvent({ ...where, event: "poke", authContext: alice });
  const events = (await h.store.listTransitions(where, { limit: 10 })).map(
    (row) => (JSON.parse(row.event) as { type: string }).type,
  );
  assert.deepEqual(events, ["xstate.init", "hang", "error.platform.never", "recover", "poke"]);
  assert.equal(next.state, "poked");
});
