// An XState 5 custom action's `self.send`: the step is committed before its actions run, and no
// actor stands behind `self` to take another event, so what an action sends its own instance is
// dropped, with one line in the machine log per step. It used to pile up in an actor the
// machine's instances shared, for as long as the version stayed loaded, and said nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const DROPPED = /self\.send from an action was dropped/;

/** The machine log's lines about dropped sends, once `count` came (or a second went by). */
async function droppedLines(h: Harness, count: number): Promise<string[]> {
  let lines: string[] = [];
  for (let i = 0; i < 50 && lines.length < count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    lines = h.logs.map((line) => line.message).filter((message) => DROPPED.test(message));
  }
  return lines;
}

test("an action's self.send is dropped, with one machine log line per step, however much it sent", async () => {
  const h = await startHarness({ clock: systemClock });
  try {
    const machineName = await h.deploy("action-self-send-v5.js", "v5-import", "action-self-send");
    const at = (instanceName: string) => ({ orgId: ORG, machineName, instanceName });
    await h.engine.createInstance({ ...at("quiet"), authContext: {} });
    await h.engine.createInstance({ ...at("loud"), authContext: {} });

    const sent = await h.engine.sendEvent({ ...at("quiet"), event: "go", authContext: {} });
    assert.equal(sent.state, "sent");
    assert.equal((await droppedLines(h, 1)).length, 1);

    // Twenty thousand sends of 10 KB, sends of no JSON and of no event, one more from a timer
    // after the step settled: one more line, and the sandbox serves on.
    const flooded = await h.engine.sendEvent({ ...at("loud"), event: "flood", authContext: {} });
    assert.equal(flooded.state, "sent");
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal((await droppedLines(h, 3)).length, 2);

    // Neither instance took a NEXT, its own or the other's; an event from outside still steps both.
    for (const name of ["quiet", "loud"]) {
      assert.equal((await h.engine.readInstance({ ...at(name), authContext: {} })).state, "sent");
      const next = await h.engine.sendEvent({ ...at(name), event: "NEXT", authContext: {} });
      assert.equal(next.state, "next", name);
    }
  } finally {
    await h.dispose();
  }
});
