// Regressions found by the differential test (xstate-differential.test.ts): sequences where the
// engine's instance ended up other than where `createActor(machine).start()` in memory does.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

type Context = { results: unknown[]; counter: number };

describe("XState parity", () => {
  let h: Harness;
  let n = 0;
  const machines = new Map<BundleStyle, string>();

  before(async () => {
    // A real clock, so a step whose service never answers ends at a (short) settle deadline.
    h = await startHarness({ clock: systemClock, settleTimeoutMs: 3000 });
    machines.set("v5-import", await h.deploy("differential-v5.js", "v5-import", "parity-v5"));
    machines.set("v4-cli", await h.deploy("differential-v4.js", "v4-cli", "parity-v4"));
  });
  after(() => h.dispose());

  /** A fresh instance of the style's machine, sent `events` in turn; its admin view after. */
  async function run(style: BundleStyle, events: string[]) {
    const at = { orgId: ORG, machineName: machines.get(style)!, instanceName: `i-${++n}` };
    await h.engine.createInstance({ ...at, authContext: {} });
    for (const event of events) await h.engine.sendEvent({ ...at, event, authContext: {} });
    const admin = await h.engine.inspectInstance(at);
    return { ...admin, context: admin.context as Context };
  }

  test("a child spawned and stopped in one step never answers (v5)", async () => {
    // spawnChild("background", { id: "bg2" }) then stopChild("bg2"): XState stops the child
    // before it can answer, so the root's handler of its done event never runs.
    const { context } = await run("v5-import", ["spawnAndStop"]);
    assert.deepEqual(context.results, []);
  });

  for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
    test(`a service invoked by a state left in the same step never answers (${style})`, async () => {
      // "flashing" invokes "flasher" and leaves at once (always): XState stops the service
      // before it answers, so the root's handler of its done event never runs.
      const { context } = await run(style, ["flash"]);
      assert.deepEqual(context.results, []);
    });
  }

  test("a child gets an event sent to it in the step that started it (v5)", async () => {
    // "talking" invokes "listener" and, in the same step, sends it "hello" (after a raise):
    // XState starts the child, then sends, and the child answers; a lost event leaves the
    // instance waiting there until the settle deadline stops the child.
    const state = await run("v5-import", ["talk"]);
    assert.equal((state.state as { running: { work: string } }).running.work, "idle");
    assert.deepEqual(state.context.results, ["answered 0"]);
  });

  test("a child spawned in an assign under a finished child's id runs (v5)", async () => {
    // The first "held" child finished (XState keeps it among the children, done); spawning
    // another under the same id starts a new child, whose done event is handled again.
    const { context } = await run("v5-import", ["spawnInAssign", "spawnInAssign"]);
    assert.deepEqual(context.results, [{ seen: 100 }, { seen: 100 }]);
  });

  for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
    test(`an instance in its final state takes no more transitions (${style})`, async () => {
      // The root handles `reset`; in memory the actor has stopped once it is done, and ignores it.
      const state = await run(style, ["inc", "finish", "reset", "inc"]);
      assert.equal(state.state, "finished");
      assert.equal(state.done, true);
      assert.equal(state.context.counter, 1);
    });
  }
});
