// Two nodes on one database (two engines on one SQLite file, as two-writers.test.ts does): a
// service runs in the sandbox of the node whose step started it, and the other node, handling an
// event of the same instance meanwhile, must not take it for lost while that node's lease on it
// lasts; once the lease runs out (its node died), the error event it is owed is delivered.
// Nothing here waits a fixed time: services are held at a gate the test opens, lease time is a
// ManualClock the test moves, and the test waits for what it can observe in the store.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { ManualClock, systemClock } from "../../src/engine/clock.js";
import type { InstanceKey } from "../../src/store/store.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { startServiceGate, type ServiceGate } from "../support/service-gate.js";

const alice = { sub: "alice" };
const events = async (h: Harness, instanceName: string) =>
  (
    await h.store.listTransitions({ orgId: ORG, machineName: "wf", instanceName }, { limit: 100 })
  ).map((t) => (JSON.parse(t.event) as { type: string }).type);

/** Polls `condition` until it holds or 10 s pass (a bound for a broken build, not a timing). */
const eventually = async (condition: () => Promise<boolean>): Promise<boolean> => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};
/** Whether some node's lease on the instance lasts until `at` (as a third node would see it). */
const leasedUntil = (h: Harness, key: InstanceKey, at: number) =>
  h.store.servicesLeasedElsewhere(key, "node_test_observer", at);

let dir: string;
let nodes: Harness[] = [];
let gate: ServiceGate;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "backstate-services-across-nodes-"));
  gate = await startServiceGate();
});
afterEach(async () => {
  for (const node of nodes) await node.stop();
  nodes = [];
  await gate.close();
  rmSync(dir, { recursive: true, force: true });
});

test("an event through node B while node A runs the instance's service leaves the service be", async () => {
  // Both nodes read one clock that only the test moves. A's lease lasts 300 ms unrenewed: B's
  // event comes later than that, so only a renewed one covers it.
  const clock = new ManualClock(Date.now());
  const a = await startHarness({ clock, serviceLeaseMs: 300, allowPrivateNetworkFetch: true }, dir);
  const b = await startHarness({ clock }, dir);
  nodes.push(a, b);
  await a.deploy("workflow-v5.js", "v5-import", "wf");
  const at = { orgId: ORG, machineName: "wf", instanceName: "svc" };
  const gateUrl = `${gate.url}double`;
  const context = { public: { count: 1, note: "x" }, secret: "s", log: [], gateUrl };
  await a.engine.createInstance({ ...at, context, authContext: alice });
  const leasedAt = clock.now();
  // `double` runs in A's sandbox until the test opens its gate.
  const started = a.engine.sendEvent({ ...at, event: "start", authContext: alice });
  await gate.reached("double");
  await eventually(() => leasedUntil(a, at, clock.now()));
  // Move past the end of the unrenewed lease a third of it at a time, each time until A's renewal
  // (due every third) has landed; a lease that is not renewed is left to B's event to find.
  let renewing = true;
  while (clock.now() <= leasedAt + 300) {
    clock.advance(100);
    renewing &&= await eventually(() => leasedUntil(a, at, clock.now() + 250));
    // Let the renewal round finish and arm the next one before time moves on.
    await new Promise((resolve) => setImmediate(resolve));
  }
  // `working` ignores inc: through B it changes nothing, and the service keeps running on A.
  const viaB = await b.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  assert.equal(viaB.state, "working");
  gate.open("double");
  const viaA = await started;
  assert.equal(viaA.state, "idle", "the service's own result was applied");
  assert.equal((viaA.publicContext as { count: number }).count, 4);
  assert.ok(
    !(await events(a, "svc")).includes("xstate.error.actor.double"),
    "no error event for a service that ran",
  );
});

test("once the lease of a node that died runs out, another node delivers the lost service's error", async () => {
  // Node A's clock stands still: it leases for 800 ms and never renews, as if it had died. B's
  // clock starts at the same instant and moves only when the test says.
  const now = Date.now();
  const a = await startHarness({ clock: new ManualClock(now), serviceLeaseMs: 800 }, dir);
  const bClock = new ManualClock(now);
  const b = await startHarness({ clock: bClock }, dir);
  nodes.push(a, b);
  await a.deploy("workflow-v5.js", "v5-import", "wf");
  const at = { orgId: ORG, machineName: "wf", instanceName: "hung" };
  await a.engine.createInstance({ ...at, authContext: alice });
  // `never` never answers; A's request waits for it (until A's pool closes at the end).
  void a.engine.sendEvent({ ...at, event: "hang", authContext: alice }).catch(() => {});
  // A leases before it commits the step, so once `hang` is in the history the lease is there.
  await eventually(async () => (await events(a, "hung")).includes("hang"));
  // While A's lease lasts, B steps the instance with its service still pending.
  const during = await b.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  assert.equal(during.state, "hanging");
  bClock.advance(1000);
  // Run out: the service runs nowhere now, and B delivers its error event before the next one.
  const after = await b.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  assert.equal(after.state, "failed");
  assert.deepEqual((await events(b, "hung")).slice(-3), ["inc", "xstate.error.actor.never", "inc"]);
});

test("a run replaced through node B does not finish its replacement when it answers on node A", async () => {
  const a = await startHarness({ clock: systemClock, allowPrivateNetworkFetch: true }, dir);
  const b = await startHarness({ clock: systemClock, allowPrivateNetworkFetch: true }, dir);
  nodes.push(a, b);
  await a.deploy("reenter-v5.js", "v5-import", "reenter");
  const at = { orgId: ORG, machineName: "reenter", instanceName: "moved" };
  // Each run answers when the test opens its gate (`run-1`, `run-2`).
  const context = { public: { run: 1, result: null }, gateUrl: gate.url };
  const created = a.engine.createInstance({ ...at, context, authContext: alice });
  // Run 1 runs on A; once its step is committed, the restart through B starts run 2 on B.
  await gate.reached("run-1");
  await eventually(async () => (await a.store.loadInstance(at)) !== undefined);
  const restarted = b.engine.sendEvent({ ...at, event: "restart", authContext: alice });
  await gate.reached("run-2");
  // Run 1 answers on A while run 2 still runs on B; A's request ends without applying it.
  gate.open("run-1");
  await created;
  gate.open("run-2");
  assert.deepEqual((await restarted).publicContext, { run: 2, result: "result of run 2" });
  const outputs = (await a.store.listTransitions(at, { limit: 10 }))
    .map((t) => (JSON.parse(t.event) as { output?: string }).output)
    .filter((output) => output !== undefined);
  assert.deepEqual(outputs, ["result of run 2"], "only run 2's result was delivered");
});
