// XState 4 invoked observables and child machines run in the sandbox as XState 4's interpreter
// runs them, until the instance settles: an observable's values are events to the instance and its
// completion is done.invoke; a child machine gets its context from `data`, talks with its parent
// (sendParent, send to its id), ends with done data, is stopped when its state is left, and its
// failure is error.platform. Both ways a v4 bundle gets XState (inlined, or "npm:xstate").
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;
const STYLES: BundleStyle[] = ["v4-cli", "v4-npm"];

before(async () => {
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 5_000 });
  for (const style of STYLES) await h.deploy("invoked-children-v4.js", style, `invoked-${style}`);
});
after(() => h.dispose());

const publicOf = (state: { publicContext?: unknown }) =>
  state.publicContext as Record<string, unknown>;

for (const style of STYLES) {
  describe(`XState 4 invoked children (${style})`, () => {
    const at = (instanceName: string) => ({
      orgId: ORG,
      machineName: `invoked-${style}`,
      instanceName,
    });
    const eventTypes = async (where: ReturnType<typeof at>) =>
      (await h.store.listTransitions(where, { limit: 50 })).map(
        (row) => (JSON.parse(row.event) as { type: string }).type,
      );

    test("an observable's three values reach the instance, then its completion", async () => {
      const where = at("observable");
      await h.engine.createInstance({ ...where, authContext: alice });
      const state = await h.engine.sendEvent({ ...where, event: "watch", authContext: alice });
      assert.equal(state.state, "idle");
      assert.equal(publicOf(state).watched, 6, "ticks by 1, 2 and 3 came before done");
      assert.deepEqual((await eventTypes(where)).slice(1), [
        "watch",
        "tick",
        "tick",
        "tick",
        "done.invoke.ticker",
      ]);
    });

    test("a child machine says hello, gets its parent's reply, and ends with done data", async () => {
      const where = at("talk");
      await h.engine.createInstance({ ...where, authContext: alice });
      const state = await h.engine.sendEvent({ ...where, event: "talk", authContext: alice });
      assert.equal(state.state, "idle");
      // n came through the invoke's data; the reply was 2n, sent to the child by its id.
      assert.deepEqual(publicOf(state).kidResult, { n: 5, got: 10 });
      assert.deepEqual((await eventTypes(where)).slice(1), [
        "talk",
        "kid.hello",
        "done.invoke.kid",
      ]);
    });

    test("a child machine from a service creator runs the same way", async () => {
      const where = at("talk-created");
      await h.engine.createInstance({ ...where, authContext: alice });
      const state = await h.engine.sendEvent({
        ...where,
        event: "talkCreated",
        authContext: alice,
      });
      assert.equal(state.state, "idle");
      assert.deepEqual(publicOf(state).kidResult, { n: 6, got: -6 });
    });

    test("a child is stopped when its parent leaves the state: nothing more comes", async () => {
      const where = at("chat");
      await h.engine.createInstance({ ...where, authContext: alice });
      const state = await h.engine.sendEvent({ ...where, event: "chat", authContext: alice });
      assert.equal(state.state, "idle");
      assert.equal(publicOf(state).heard, 3);
      // The child ticked every 20 ms while it ran; ten times that, and no tick came since.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const types = await eventTypes(where);
      assert.equal(types.filter((type) => type === "chatter.tick").length, 3);
      const admin = await h.engine.inspectInstance(where);
      assert.equal((admin.context as { public: { heard: number } }).public.heard, 3);
    });

    test("a child machine whose action throws gives its parent error.platform", async () => {
      const where = at("explode");
      await h.engine.createInstance({ ...where, authContext: alice });
      const state = await h.engine.sendEvent({ ...where, event: "explode", authContext: alice });
      assert.equal(state.state, "idle");
      assert.equal(publicOf(state).failure, "boom");
      assert.deepEqual((await eventTypes(where)).slice(1), ["explode", "error.platform.bomb"]);
    });
  });
}
