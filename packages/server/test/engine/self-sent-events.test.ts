// An event a machine sends itself reaches it, as XState's own actor delivers it: after the
// macrostep that sent it (a step of its own), or after its delay (a durable timer, which a
// cancel reaches). XState 5's `sendTo` its own actor ref and XState 4's delayed `raise` were
// dropped.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

async function history(h: Harness, where: object) {
  const rows = await h.store.listTransitions(where as never, { limit: 10 });
  return rows.map((row) => {
    const event = JSON.parse(row.event) as { type: string; via?: string };
    return event.via ? `${event.type}:${event.via}` : event.type;
  });
}

for (const style of ["v5-import", "v5-inline", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "self-send-v5.js" : "self-send-v4.js";
  describe(`an event the machine sends itself (${style})`, () => {
    for (const event of ["direct", "enqueued"]) {
      test(`is stepped after the step that sent it (${event})`, async () => {
        const h = await startHarness({ clock: new ManualClock() });
        try {
          await h.deploy(fixture, style, "self-send");
          const where = { orgId: ORG, machineName: "self-send", instanceName: event };
          await h.engine.createInstance({ ...where, authContext: alice });
          const sent = await h.engine.sendEvent({ ...where, event, authContext: alice });
          assert.equal(sent.state, "pinged");
          assert.deepEqual(await history(h, where), ["xstate.init", event, `ping:${event}`]);
        } finally {
          await h.dispose();
        }
      });
    }

    test("raised, is taken within the step that raised it", async () => {
      const h = await startHarness({ clock: new ManualClock() });
      try {
        await h.deploy(fixture, style, "self-send");
        const where = { orgId: ORG, machineName: "self-send", instanceName: "raised" };
        await h.engine.createInstance({ ...where, authContext: alice });
        const sent = await h.engine.sendEvent({ ...where, event: "raised", authContext: alice });
        assert.equal(sent.state, "pinged");
        assert.deepEqual(await history(h, where), ["xstate.init", "raised"]);
      } finally {
        await h.dispose();
      }
    });

    for (const disarm of [false, true]) {
      test(`after a delay, is a timer${disarm ? " that its cancel reaches" : ""}`, async () => {
        const clock = new ManualClock();
        const h = await startHarness({ clock });
        try {
          await h.deploy(fixture, style, "self-send");
          const instanceName = disarm ? "disarmed" : "later";
          const where = { orgId: ORG, machineName: "self-send", instanceName };
          await h.engine.createInstance({ ...where, authContext: alice });
          const sent = await h.engine.sendEvent({ ...where, event: "later", authContext: alice });
          assert.equal(sent.state, "idle");
          if (disarm) {
            await h.engine.sendEvent({ ...where, event: "disarm", authContext: alice });
            assert.equal(await h.store.nextTimerDue(), undefined, "the cancel left it armed");
          } else {
            assert.notEqual(await h.store.nextTimerDue(), undefined, "no timer was armed");
          }
          clock.advance(1_000);
          await h.engine.timersIdle();
          const state = await h.engine.readInstance({ ...where, authContext: alice });
          assert.equal(state.state, disarm ? "idle" : "pinged");
          const expected = disarm
            ? ["xstate.init", "later", "disarm"]
            : ["xstate.init", "later", "ping:later"];
          assert.deepEqual(await history(h, where), expected);
        } finally {
          await h.dispose();
        }
      });
    }
  });
}
