// Child actors a machine starts for itself, as XState runs them: a v5 callback's events sent back
// reach the instance (on its own, or answering an event sent to it), a send to a child waits its
// delay, a v5 child spawned inside an assign runs and reports its output, and a v4 invoke's `data`
// mapper is evaluated for its service.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  // A short settle deadline: a child whose events never arrived shows as a request that answers
  // the old state after it, not as a test that waits for the default 90 s.
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  await h.deploy("children-v5.js", "v5-import", "children");
  await h.deploy("invoke-data-v4.js", "v4-cli", "invokeData");
});
after(() => h.dispose());

const at = (machineName: string, instanceName: string) => ({
  orgId: ORG,
  machineName,
  instanceName,
});
const publicOf = (state: { publicContext?: unknown }) =>
  state.publicContext as Record<string, unknown>;

test("v5: a callback's sendBack reaches the instance, which then settles", async () => {
  const where = at("children", "on-its-own");
  await h.engine.createInstance({ ...where, authContext: alice });
  const started = Date.now();
  const state = await h.engine.sendEvent({ ...where, event: "listen", authContext: alice });
  assert.equal(state.state, "idle");
  assert.equal(publicOf(state).pongs, 1);
  assert.ok(Date.now() - started < 4_000, "settled by the callback's own event, not the deadline");
});

test("v5: an event sent to a callback is answered through sendBack", async () => {
  const where = at("children", "asked");
  await h.engine.createInstance({ ...where, authContext: alice });
  const listening = h.engine.sendEvent({ ...where, event: "listen", authContext: alice });
  const asked = await h.engine.sendEvent({ ...where, event: "ask", authContext: alice });
  await listening;
  assert.equal(asked.state, "idle");
  assert.equal(publicOf(asked).pongs, 1, "one pong: the answer to ask ended the callback");
});

test("v5: a delayed send to a child waits its delay; an event sent after it overtakes it", async () => {
  const where = at("children", "delayed");
  await h.engine.createInstance({ ...where, authContext: alice });
  const listening = h.engine.sendEvent({ ...where, event: "listen", authContext: alice });
  // In the instance's order: askLater pings in 300 ms, ask pings at once, and the first pong
  // ends the callback.
  const later = h.engine.sendEvent({ ...where, event: "askLater", authContext: alice });
  const now = await h.engine.sendEvent({ ...where, event: "ask", authContext: alice });
  await Promise.all([listening, later]);
  assert.equal(now.state, "idle");
  assert.equal(publicOf(now).lastPong, "ask");
});

test("v5: a child spawned in an assign runs, and its output comes back", async () => {
  const where = at("children", "spawner");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({ ...where, event: "spawnOne", authContext: alice });
  assert.equal(publicOf(state).spawnedOutput, 7);
});

test("v4: an invoke's data mapper is evaluated against the context and event", async () => {
  const where = at("invokeData", "mapped");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({
    ...where,
    event: { type: "go", tag: "t1" },
    authContext: alice,
  });
  assert.equal(state.state, "idle");
  assert.deepEqual(publicOf(state).got, { x: 5, fromEvent: "t1", lit: "L" });
});
