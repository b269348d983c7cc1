// Events delivered together (queued while their instance was busy) are each answered once their
// instance has settled as of their own step. Regression: every caller of a batch waited for the
// services any event of it started, so an event that started nothing, delivered with a later one
// that started a long service, was answered only when that service ended (up to the 90 s
// deadline), though sent one after the other it would have been answered at once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { systemClock } from "../../src/engine/clock.js";
import type { InstanceState } from "../../src/engine/instance-state.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { startServiceGate, type ServiceGate } from "../support/service-gate.js";

let h: Harness;
let gate: ServiceGate;
const alice = { sub: "alice" };

before(async () => {
  gate = await startServiceGate();
  // The service waits on the test's gate: a private address.
  // A short settle deadline: should an answer wait for the gate again, the file still ends soon.
  h = await startHarness({
    clock: systemClock,
    allowPrivateNetworkFetch: true,
    settleTimeoutMs: 20_000,
  });
  await h.deploy("workflow-v5.js", "v5-import", "workflow");
});
after(async () => {
  gate.open("double");
  await h.dispose();
  await gate.close();
});

/** The answer, or "still waiting" if none came within `ms`. */
function within(ms: number, answer: Promise<InstanceState>): Promise<InstanceState | string> {
  // Unreferenced: a pending wait does not keep the test process alive once the answer is in.
  return Promise.race([answer, sleep(ms, "still waiting", { ref: false })]);
}

test("an event batched before one that starts a service is answered without waiting for it", async () => {
  const at = { orgId: ORG, machineName: "workflow", instanceName: "batched" };
  await h.engine.createInstance({
    ...at,
    context: { gateUrl: `${gate.url}double` },
    authContext: alice,
  });
  // Posted in the same turn: one batch, "inc" first, then "start", whose service waits at the gate.
  const inc = h.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  const start = h.engine.sendEvent({ ...at, event: "start", authContext: alice });
  let startAnswered = false;
  void start.then(() => (startAnswered = true));
  await gate.reached("double");

  const incAnswer = await within(10_000, inc);
  assert.notEqual(incAnswer, "still waiting", "inc waited for the service a later event started");
  assert.deepEqual((incAnswer as InstanceState).publicContext, { count: 1, note: "default" });
  assert.equal((incAnswer as InstanceState).state, "idle");
  // The event that started the service still waits for it to settle.
  assert.equal(startAnswered, false);
  const history = await h.store.listTransitions(at, { limit: 10 });
  assert.deepEqual(
    history.map((t) => (JSON.parse(t.event) as { type: string }).type),
    ["xstate.init", "inc", "start"],
    "both were delivered, in order, in the batch",
  );

  gate.open("double");
  const started = await start;
  assert.equal(started.state, "idle");
  assert.deepEqual(started.publicContext, { count: 4, note: "default" });
});

test("an event batched after one that starts a service waits for it, as before", async () => {
  const at = { orgId: ORG, machineName: "workflow", instanceName: "batched-after" };
  await h.engine.createInstance({
    ...at,
    context: { gateUrl: `${gate.url}double-after` },
    authContext: alice,
  });
  const start = h.engine.sendEvent({ ...at, event: "start", authContext: alice });
  const inc = h.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  await gate.reached("double-after");
  assert.equal(await within(500, inc), "still waiting");
  gate.open("double-after");
  assert.equal((await inc).state, "idle");
  assert.equal((await start).state, "idle");
});
