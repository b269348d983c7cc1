// Two engines (two nodes) on one database, writing to the same instances at once: every event
// either node acknowledged is in the history exactly once, and each instance has one history.
// The store's optimistic check refuses a commit built on a stale state; the engine retries it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

let dir: string;
let a: Harness;
let b: Harness;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "backstate-two-writers-"));
  a = await startHarness({ clock: systemClock }, dir);
  b = await startHarness({ clock: systemClock }, dir);
  await a.deploy("workflow-v5.js", "v5-import", "shared");
});
after(async () => {
  await a.stop();
  await b.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("concurrent events through two nodes: all acknowledged, each once, in one history", async () => {
  const instances = ["one", "two"];
  const at = (instanceName: string) => ({ orgId: ORG, machineName: "shared", instanceName });
  for (const name of instances) {
    await a.engine.createInstance({ ...at(name), authContext: { sub: "alice" } });
  }
  const perNode = 30;
  const sends = [];
  for (let i = 0; i < perNode; i++) {
    for (const node of [a, b]) {
      for (const name of instances) {
        sends.push(
          node.engine.sendEvent({ ...at(name), event: "inc", authContext: { sub: "alice" } }),
        );
      }
    }
  }
  const results = await Promise.allSettled(sends);
  const failed = results.filter((r) => r.status === "rejected");
  assert.deepEqual(failed, [], "every event is acknowledged");
  for (const name of instances) {
    const state = await b.engine.readInstance({ ...at(name), authContext: { sub: "alice" } });
    assert.equal((state.publicContext as { count: number }).count, 2 * perNode);
    const history = await a.store.listTransitions(at(name), { limit: 1000 });
    assert.deepEqual(
      history.map((t) => t.sequence),
      Array.from({ length: 2 * perNode + 1 }, (_, i) => i + 1),
      "one gapless history",
    );
  }
});
