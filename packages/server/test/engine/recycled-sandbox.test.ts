// A sandbox process is recycled for another org while a step of one of its instances waits for
// its commit (a slow database): the step's effects must still run once it commits, since the
// transition is durable. The pool has two slots; three orgs want them.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, OTHER_ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { StoreHolds } from "../support/held-writes.js";

const THIRD_ORG = "org_test0000000000000000003";
const alice = { sub: "alice" };

let sink: Server;
let sinkUrl: string;
const effects: string[] = [];
let h: Harness;
const holds = new StoreHolds();

before(async () => {
  sink = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      effects.push((JSON.parse(body) as { effect: string }).effect);
      response.end("ok");
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
  h = await startHarness({
    clock: systemClock,
    // The machines' actions report to the local sink: a private address.
    allowPrivateNetworkFetch: true,
    wrapStore: (store) => holds.wrap(store),
  });
  await h.store.createOrg({ id: THIRD_ORG, name: "third", createdAt: Date.now() });
  await h.deploy("workflow-v5.js", "v5-import", "wf", ORG);
  await h.deploy("workflow-v5.js", "v5-import", "wf", OTHER_ORG);
});

after(async () => {
  await h.dispose();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
});

test("a committed step's action runs although its sandbox's slot went to another org meanwhile", async () => {
  // The other org's process holds two instances with running services: pinned, yet idle.
  for (const instanceName of ["o1", "o2"]) {
    const at = { orgId: OTHER_ORG, machineName: "wf", instanceName };
    await h.engine.createInstance({ ...at, authContext: alice });
    void h.engine.sendEvent({ ...at, event: "hang", authContext: alice }).catch(() => {});
  }
  const at = { orgId: ORG, machineName: "wf", instanceName: "e" };
  await h.engine.createInstance({ ...at, authContext: alice });
  const effectCommit = holds.hold("commitTransition", (commit) =>
    commit.transition.event.includes('"effect"'),
  );
  const sent = h.engine.sendEvent({
    ...at,
    event: { type: "effect", url: sinkUrl, id: "committed" },
    authContext: alice,
  });
  await effectCommit.reached;
  // A third org needs a process while the step waits in its sandbox for the commit.
  await h.deploy("workflow-v5.js", "v5-import", "wf", THIRD_ORG);
  effectCommit.release();
  await sent;
  const history = await h.store.listTransitions(at, { limit: 10 });
  assert.ok(
    history.some((t) => t.event.includes('"committed"')),
    "the transition is committed",
  );
  const deadline = Date.now() + 10_000;
  while (effects.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(effects, ["committed"], "its action ran, once");
  assert.ok(h.pool.stats.orgSwitches >= 1, "the third org did get a process");
});
