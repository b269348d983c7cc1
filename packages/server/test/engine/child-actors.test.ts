// Child services of an instance, as XState runs them. XState 4: a callback's events sent back all
// reach the instance, a send to a child waits its delay (an event sent after it overtakes it), and
// an invoke's `data` mapper, an object of functions or a function, is evaluated for its service.
// XState 5: a callback's sendBack reaches the instance, on its own or answering an event sent to
// it, and a child spawned inside an assign runs and reports its output.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  await h.deploy("children-v4.js", "v4-cli", "children4");
  await h.deploy("children-v5.js", "v5-import", "children");
});
after(() => h.dispose());

const at = (instanceName: string) => ({ orgId: ORG, machineName: "children4", instanceName });
const publicOf = (state: { publicContext?: unknown }) =>
  state.publicContext as Record<string, unknown>;

test("a delayed send to a child waits its delay; an event sent after it overtakes it", async () => {
  const where = at("delayed");
  await h.engine.createInstance({ ...where, authContext: alice });
  const listening = h.engine.sendEvent({ ...where, event: "listen", authContext: alice });
  // In the instance's order: askLater pings in 300 ms, ask pings at once; the first pong ends
  // the callback.
  const later = h.engine.sendEvent({ ...where, event: "askLater", authContext: alice });
  const now = await h.engine.sendEvent({ ...where, event: "ask", authContext: alice });
  await Promise.all([listening, later]);
  assert.equal(now.state, "idle");
  assert.equal(publicOf(now).lastPong, "ask");
});

test("every event a callback sends back reaches the instance, in order, while it runs", async () => {
  const where = at("reporting");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({ ...where, event: "report", authContext: alice });
  assert.equal(state.state, "idle", "finished came last, after both progress events");
  assert.equal(publicOf(state).progress, 2);
  const events = (await h.store.listTransitions(where, { limit: 10 })).map(
    (row) => (JSON.parse(row.event) as { type: string }).type,
  );
  assert.deepEqual(events.slice(1), ["report", "progress", "progress", "finished"]);
});

test("an invoke's data mapper, an object of functions, is evaluated for its service", async () => {
  const where = at("mapped");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({
    ...where,
    event: { type: "go", tag: "t1" },
    authContext: alice,
  });
  assert.equal(state.state, "idle");
  assert.deepEqual(publicOf(state).got, { x: 5, fromEvent: "t1", lit: "L" });
});

test("an invoke's data mapper, a function, is evaluated for its service", async () => {
  const where = at("mapped-by-function");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({
    ...where,
    event: { type: "goFunction", add: 2 },
    authContext: alice,
  });
  assert.deepEqual(publicOf(state).gotFromFunction, { sum: 7 });
});

const at5 = (instanceName: string) => ({ orgId: ORG, machineName: "children", instanceName });

test("v5: a callback's sendBack reaches the instance, which then settles", async () => {
  const where = at5("on-its-own");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({ ...where, event: "listen", authContext: alice });
  assert.equal(state.state, "idle");
  assert.deepEqual([publicOf(state).pongs, publicOf(state).lastPong], [1, "own"]);
});

test("v5: an event sent to a callback is answered through sendBack; a delayed one waits", async () => {
  const where = at5("asked");
  await h.engine.createInstance({ ...where, authContext: alice });
  const listening = h.engine.sendEvent({ ...where, event: "listen", authContext: alice });
  const later = h.engine.sendEvent({ ...where, event: "askLater", authContext: alice });
  const asked = await h.engine.sendEvent({ ...where, event: "ask", authContext: alice });
  await Promise.all([listening, later]);
  assert.equal(asked.state, "idle");
  assert.deepEqual([publicOf(asked).pongs, publicOf(asked).lastPong], [1, "ask"]);
});

test("v5: a child spawned in an assign runs, and its output comes back", async () => {
  const where = at5("spawner");
  await h.engine.createInstance({ ...where, authContext: alice });
  const state = await h.engine.sendEvent({ ...where, event: "spawnOne", authContext: alice });
  assert.equal(publicOf(state).spawnedOutput, 7);
});
