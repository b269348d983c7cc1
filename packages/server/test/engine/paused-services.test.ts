// Pausing an instance stops the services it has running, as its settle deadline would: a result
// that came while it was paused could not be applied, and was dropped along with the service's
// place on the pending list, so the resumed instance waited in the invoking state for an answer
// that never came (and a service that never finished ran on). Each stopped service is owed its
// error event, which comes before the first event after the resume.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };

async function history(h: Harness, where: object) {
  const rows = await h.store.listTransitions(where as never, { limit: 20 });
  return rows.map((row) => (JSON.parse(row.event) as { type: string }).type);
}

async function until(what: string, predicate: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 250; i++) {
    if (await predicate()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "workflow-v5.js" : "workflow-v4.js";
  const errorOf = (id: string) =>
    style.startsWith("v5") ? `xstate.error.actor.${id}` : `error.platform.${id}`;

  describe(`a paused instance's running services (${style})`, () => {
    // `start` invokes a promise that answers after delayMs; `hang` one that never answers.
    for (const [event, state, serviceId] of [
      ["start", "working", "double"],
      ["hang", "hanging", "never"],
    ] as const) {
      test(`are stopped, and owed their error event after the resume (${event})`, async () => {
        const h = await startHarness({ clock: systemClock, settleTimeoutMs: 3_000 });
        try {
          await h.deploy(fixture, style, "paused-services");
          const where = { orgId: ORG, machineName: "paused-services", instanceName: event };
          await h.engine.createInstance({
            ...where,
            context: { delayMs: 300 },
            authContext: alice,
          });
          const sending = h.engine.sendEvent({ ...where, event, authContext: alice });
          await until(state, async () => (await h.engine.inspectInstance(where)).state === state);
          await h.engine.setInstanceStatus({ ...where, status: "paused" });
          // Answered once nothing runs: the pause stopped the service (or it answered, paused).
          if (event === "start") await sending;
          await h.engine.setInstanceStatus({ ...where, status: "running" });
          const next = await h.engine.sendEvent({ ...where, event: "inc", authContext: alice });
          await sending;
          assert.deepEqual(await history(h, where), [
            "xstate.init",
            event,
            errorOf(serviceId),
            "inc",
          ]);
          assert.equal(next.state, "failed");
        } finally {
          await h.dispose();
        }
      });
    }

    test("a pause another node reports late stops only the services started up to it", async () => {
      // Another node paused and resumed the instance, and this one stepped it again, before the
      // pause's notice came: the services started since are not the pause's, and run on.
      const h = await startHarness({ clock: systemClock, settleTimeoutMs: 60_000 });
      try {
        await h.deploy(fixture, style, "paused-services");
        const where = { orgId: ORG, machineName: "paused-services", instanceName: "late" };
        await h.engine.createInstance({ ...where, authContext: alice });
        const sending = h.engine.sendEvent({ ...where, event: "hang", authContext: alice });
        await until(
          "hanging",
          async () => (await h.engine.inspectInstance(where)).state === "hanging",
        );
        const started = (await h.store.loadInstance(where))!.sequence;
        h.engine.pausedElsewhere(where, started - 1);
        // Still running: the event finds no service lost, and none is owed an error event.
        const stillHanging = h.engine.sendEvent({ ...where, event: "inc", authContext: alice });
        await until("inc", async () => (await history(h, where)).includes("inc"));
        assert.deepEqual(await history(h, where), ["xstate.init", "hang", "inc"]);
        h.engine.pausedElsewhere(where, started);
        await sending;
        await stillHanging;
        await h.engine.setInstanceStatus({ ...where, status: "running" });
        const next = await h.engine.sendEvent({ ...where, event: "inc", authContext: alice });
        assert.deepEqual(await history(h, where), [
          "xstate.init",
          "hang",
          "inc",
          errorOf("never"),
          "inc",
        ]);
        assert.equal(next.state, "failed");
      } finally {
        await h.dispose();
      }
    });

    test("answering when it was paused elsewhere, are owed their error event after the resume", async () => {
      const h = await startHarness({ clock: systemClock, settleTimeoutMs: 3_000 });
      try {
        await h.deploy(fixture, style, "paused-services");
        const where = { orgId: ORG, machineName: "paused-services", instanceName: "elsewhere" };
        await h.engine.createInstance({ ...where, context: { delayMs: 300 }, authContext: alice });
        const sending = h.engine.sendEvent({ ...where, event: "start", authContext: alice });
        await until(
          "working",
          async () => (await h.engine.inspectInstance(where)).state === "working",
        );
        // Another node pauses it: this engine learns of it when the service's result comes.
        assert.ok(await h.store.setInstanceStatus(where, "paused"));
        await sending;
        assert.ok(
          h.logs.some((log) => log.message === "a service result was not applied"),
          "the result was applied to a paused instance",
        );
        await h.engine.setInstanceStatus({ ...where, status: "running" });
        const next = await h.engine.sendEvent({ ...where, event: "inc", authContext: alice });
        assert.deepEqual(await history(h, where), [
          "xstate.init",
          "start",
          errorOf("double"),
          "inc",
        ]);
        assert.equal(next.state, "failed");
      } finally {
        await h.dispose();
      }
    });
  });
}
