// Two nodes on one database (two engines on one SQLite file, as two-writers.test.ts does): a
// service runs in the sandbox of the node whose step started it, and the other node, handling an
// event of the same instance meanwhile, must not take it for lost while that node's lease on it
// lasts; once the lease runs out (its node died), the error event it is owed is delivered.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { ManualClock, systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
const events = async (h: Harness, instanceName: string) =>
  (
    await h.store.listTransitions({ orgId: ORG, machineName: "wf", instanceName }, { limit: 100 })
  ).map((t) => (JSON.parse(t.event) as { type: string }).type);

let dir: string;
let nodes: Harness[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "backstate-services-across-nodes-"));
});
afterEach(async () => {
  for (const node of nodes) await node.stop();
  nodes = [];
  rmSync(dir, { recursive: true, force: true });
});

test("an event through node B while node A runs the instance's service leaves the service be", async () => {
  // A's lease lasts 300 ms unrenewed: B's event comes later, so only a renewed one covers it.
  const a = await startHarness({ clock: systemClock, serviceLeaseMs: 300 }, dir);
  const b = await startHarness({ clock: systemClock }, dir);
  nodes.push(a, b);
  await a.deploy("workflow-v5.js", "v5-import", "wf");
  const at = { orgId: ORG, machineName: "wf", instanceName: "svc" };
  const context = { public: { count: 1, note: "x" }, secret: "s", log: [], delayMs: 1500 };
  await a.engine.createInstance({ ...at, context, authContext: alice });
  // `double` runs 1.5 s in A's sandbox.
  const started = a.engine.sendEvent({ ...at, event: "start", authContext: alice });
  await new Promise((resolve) => setTimeout(resolve, 700));
  // `working` ignores inc: through B it changes nothing, and the service keeps running on A.
  const viaB = await b.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  assert.equal(viaB.state, "working");
  const viaA = await started;
  assert.equal(viaA.state, "idle", "the service's own result was applied");
  assert.equal((viaA.publicContext as { count: number }).count, 4);
  assert.ok(
    !(await events(a, "svc")).includes("xstate.error.actor.double"),
    "no error event for a service that ran",
  );
});

test("once the lease of a node that died runs out, another node delivers the lost service's error", async () => {
  // Node A's clock stands still: it leases for 800 ms and never renews, as if it had died.
  const a = await startHarness({ clock: new ManualClock(Date.now()), serviceLeaseMs: 800 }, dir);
  const b = await startHarness({ clock: systemClock }, dir);
  nodes.push(a, b);
  await a.deploy("workflow-v5.js", "v5-import", "wf");
  const at = { orgId: ORG, machineName: "wf", instanceName: "hung" };
  await a.engine.createInstance({ ...at, authContext: alice });
  // `never` never answers; A's request waits for it (until A's pool closes at the end).
  void a.engine.sendEvent({ ...at, event: "hang", authContext: alice }).catch(() => {});
  const deadline = Date.now() + 10_000;
  while (!(await events(a, "hung")).includes("hang") && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // While A's lease lasts, B steps the instance with its service still pending.
  const during = await b.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  assert.equal(during.state, "hanging");
  await new Promise((resolve) => setTimeout(resolve, 1000));
  // Run out: the service runs nowhere now, and B delivers its error event before the next one.
  const after = await b.engine.sendEvent({ ...at, event: "inc", authContext: alice });
  assert.equal(after.state, "failed");
  assert.deepEqual((await events(b, "hung")).slice(-3), ["inc", "xstate.error.actor.never", "inc"]);
});

test("a run replaced through node B does not finish its replacement when it answers on node A", async () => {
  const a = await startHarness({ clock: systemClock }, dir);
  const b = await startHarness({ clock: systemClock }, dir);
  nodes.push(a, b);
  await a.deploy("reenter-v5.js", "v5-import", "reenter");
  const at = { orgId: ORG, machineName: "reenter", instanceName: "moved" };
  // Run 1 runs on A for 600 ms; the restart through B at about 150 ms starts run 2 on B.
  const context = { public: { run: 1, result: null }, firstMs: 600, laterMs: 1200 };
  const created = a.engine.createInstance({ ...at, context, authContext: alice });
  const deadline = Date.now() + 10_000;
  while ((await a.store.loadInstance(at)) === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 150));
  const restarted = await b.engine.sendEvent({ ...at, event: "restart", authContext: alice });
  await created;
  assert.deepEqual(restarted.publicContext, { run: 2, result: "result of run 2" });
  const outputs = (await a.store.listTransitions(at, { limit: 10 }))
    .map((t) => (JSON.parse(t.event) as { output?: string }).output)
    .filter((output) => output !== undefined);
  assert.deepEqual(outputs, ["result of run 2"], "only run 2's result was delivered");
});
