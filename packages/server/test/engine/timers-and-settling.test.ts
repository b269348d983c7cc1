// Durable timers on a simulated clock, the settle deadline, services lost to a restart, and
// effects that wait for their commit.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ManualClock, systemClock } from "../../src/engine/clock.js";
import type { Store } from "../../src/store/store.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";

const alice = { sub: "alice" };

for (const style of ["v5-import", "v4-cli"] as BundleStyle[]) {
  const fixture = style.startsWith("v5") ? "workflow-v5.js" : "workflow-v4.js";

  describe(`durable timers (${style})`, () => {
    const machineName = `timers-${style}`;
    const at = (instanceName: string) => ({ orgId: ORG, machineName, instanceName });
    const count = async (h: Harness, name: string) =>
      (
        (await h.engine.readInstance({ ...at(name), authContext: alice })).publicContext as {
          count: number;
        }
      ).count;
    const advance = async (h: Harness, ms: number) => {
      (h.clock as ManualClock).advance(ms);
      await h.engine.timersIdle();
    };

    test("an after timer fires at its time, not before, exactly once", async () => {
      const h = await startHarness({ clock: new ManualClock() });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("t1"), authContext: alice });
        assert.equal(
          (await h.engine.sendEvent({ ...at("t1"), event: "arm", authContext: alice })).state,
          "armed",
        );
        await advance(h, 999);
        assert.equal(
          (await h.engine.readInstance({ ...at("t1"), authContext: alice })).state,
          "armed",
        );
        await advance(h, 1);
        const state = await h.engine.readInstance({ ...at("t1"), authContext: alice });
        assert.equal(state.state, "idle");
        assert.equal(await count(h, "t1"), 1);
        await advance(h, 60_000);
        assert.equal(await count(h, "t1"), 1, "fires once");
        assert.equal(await h.store.nextTimerDue(), undefined);
      } finally {
        await h.dispose();
      }
    });

    test("leaving the state cancels its timer", async () => {
      const h = await startHarness({ clock: new ManualClock() });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("t2"), authContext: alice });
        await h.engine.sendEvent({ ...at("t2"), event: "arm", authContext: alice });
        await h.engine.sendEvent({ ...at("t2"), event: "disarm", authContext: alice });
        await advance(h, 5000);
        assert.equal(await count(h, "t2"), 0);
        const events = (await h.store.listTransitions(at("t2"), { limit: 100 })).map(
          (t) => (JSON.parse(t.event) as { type: string }).type,
        );
        assert.deepEqual(events, ["xstate.init", "arm", "disarm"]);
      } finally {
        await h.dispose();
      }
    });

    test("a pending timer survives a restart and fires once after it", async () => {
      const clock = new ManualClock();
      let h = await startHarness({ clock });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("t3"), authContext: alice });
        await h.engine.sendEvent({ ...at("t3"), event: "arm", authContext: alice });
        h = await h.restart({ clock });
        await advance(h, 1000);
        assert.equal(await count(h, "t3"), 1);
      } finally {
        await h.dispose();
      }
    });

    test("a timer that cannot be delivered is tried 5 times, 30 s apart, then dropped", async () => {
      const h = await startHarness({ clock: new ManualClock() });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("t4"), authContext: alice });
        await h.engine.sendEvent({ ...at("t4"), event: "arm", authContext: alice });
        await h.engine.setInstanceStatus({ ...at("t4"), status: "paused" });
        await advance(h, 1000);
        for (let i = 0; i < 4; i++) {
          assert.notEqual(
            await h.store.nextTimerDue(),
            undefined,
            `still pending after ${i + 1} attempts`,
          );
          await advance(h, 30_000);
        }
        assert.equal(await h.store.nextTimerDue(), undefined, "dropped after the fifth attempt");
        assert.ok(
          h.logs.some((l) => l.message.includes("dropped")),
          "the drop is logged",
        );
        await h.engine.setInstanceStatus({ ...at("t4"), status: "running" });
        await advance(h, 120_000);
        assert.equal(await count(h, "t4"), 0);
        assert.equal(
          (await h.engine.readInstance({ ...at("t4"), authContext: alice })).state,
          "armed",
        );
      } finally {
        await h.dispose();
      }
    });

    test("a paused instance refuses events with invalid-state until resumed", async () => {
      const h = await startHarness({ clock: new ManualClock() });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("t5"), authContext: alice });
        await h.engine.setInstanceStatus({ ...at("t5"), status: "paused" });
        await assert.rejects(
          h.engine.sendEvent({ ...at("t5"), event: "inc", authContext: alice }),
          { code: "invalid-state" },
        );
        await h.engine.setInstanceStatus({ ...at("t5"), status: "running" });
        await h.engine.sendEvent({ ...at("t5"), event: "inc", authContext: alice });
        assert.equal(await count(h, "t5"), 1);
      } finally {
        await h.dispose();
      }
    });
  });

  describe(`settling (${style})`, () => {
    const machineName = `settle-${style}`;
    const at = (instanceName: string) => ({ orgId: ORG, machineName, instanceName });
    const eventsOf = async (h: Harness, name: string) =>
      (await h.store.listTransitions(at(name), { limit: 100 })).map(
        (t) => (JSON.parse(t.event) as { type: string }).type,
      );
    const errorType = style.startsWith("v5") ? "xstate.error.actor.never" : "error.platform.never";

    test("at the settle deadline the answer is the current state; the cut-off service's error comes before the next event", async () => {
      const h = await startHarness({ clock: systemClock, settleTimeoutMs: 300 });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("s1"), authContext: alice });
        const state = await h.engine.sendEvent({ ...at("s1"), event: "hang", authContext: alice });
        assert.equal(state.state, "hanging");
        const next = await h.engine.sendEvent({ ...at("s1"), event: "inc", authContext: alice });
        assert.equal(next.state, "failed");
        assert.equal((next.publicContext as { count: number }).count, 1);
        assert.deepEqual(await eventsOf(h, "s1"), ["xstate.init", "hang", errorType, "inc"]);
      } finally {
        await h.dispose();
      }
    });

    test("a service cut off by a restart gets its error event before the next event", async () => {
      let h = await startHarness({ clock: systemClock, settleTimeoutMs: 200 });
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at("s2"), authContext: alice });
        await h.engine.sendEvent({ ...at("s2"), event: "hang", authContext: alice });
        h = await h.restart({ clock: systemClock, settleTimeoutMs: 200 });
        const next = await h.engine.sendEvent({ ...at("s2"), event: "inc", authContext: alice });
        assert.equal(next.state, "failed");
        assert.deepEqual(await eventsOf(h, "s2"), ["xstate.init", "hang", errorType, "inc"]);
      } finally {
        await h.dispose();
      }
    });
  });

  describe(`effects after commit (${style})`, () => {
    let server: Server;
    let url: string;
    const received: string[] = [];
    before(async () => {
      server = createServer((req, res) => {
        let body = "";
        req.on("data", (chunk: Buffer) => (body += chunk.toString()));
        req.on("end", () => {
          received.push((JSON.parse(body) as { effect: string }).effect);
          res.end("ok");
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const waitFor = async (predicate: () => boolean) => {
      for (let i = 0; i < 100 && !predicate(); i++) await new Promise((r) => setTimeout(r, 20));
    };

    test("an action runs once its transition is committed, and never when the commit fails", async () => {
      let failCommits = false;
      const wrapStore = (store: Store): Store =>
        overriding(store, {
          commitTransition: (commit) =>
            failCommits
              ? Promise.reject(new Error("disk on fire"))
              : store.commitTransition(commit),
        });
      // The machine's actions report to the local server above: a private address.
      const h = await startHarness({
        clock: systemClock,
        wrapStore,
        allowPrivateNetworkFetch: true,
      });
      const machineName = `effects-${style}`;
      const at = { orgId: ORG, machineName, instanceName: "e1" };
      try {
        await h.deploy(fixture, style, machineName);
        await h.engine.createInstance({ ...at, authContext: alice });
        failCommits = true;
        await assert.rejects(
          h.engine.sendEvent({
            ...at,
            event: { type: "effect", url, id: `lost-${style}` },
            authContext: alice,
          }),
        );
        failCommits = false;
        await h.engine.sendEvent({
          ...at,
          event: { type: "effect", url, id: `kept-${style}` },
          authContext: alice,
        });
        await waitFor(() => received.includes(`kept-${style}`));
        // A window for the lost effect (or a second run of the kept one) to show up: no event
        // marks that none will. Too short on a slow machine, it sees less; it cannot fail.
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(received.includes(`kept-${style}`), "the committed effect ran");
        assert.ok(!received.includes(`lost-${style}`), "the uncommitted effect never ran");
        assert.equal(received.filter((e) => e === `kept-${style}`).length, 1, "exactly once");
      } finally {
        await h.dispose();
      }
    });
  });
}
