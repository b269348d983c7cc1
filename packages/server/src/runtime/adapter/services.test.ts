import assert from "node:assert/strict";
import { test } from "node:test";
import type { AdapterNotification, MachineEvent } from "../adapter-protocol.js";
import { ServiceRegistry, type ServiceStarter } from "./services.js";

// Long enough to be pending throughout a test, short enough that a leftover never holds the
// test process for long.
const LATER_MS = 2_000;
const failure = (error: unknown): MachineEvent => ({ type: "error", error: String(error) });

/** A service that records what it is sent, and whose end the test decides. */
function listener(received: MachineEvent[]): {
  starter: ServiceStarter;
  finish: () => void;
} {
  let report: ((event: MachineEvent, final: boolean) => void) | undefined;
  return {
    starter: (reportTo) => {
      report = reportTo;
      return { stop: () => {}, send: (event) => received.push(event) };
    },
    finish: () => report?.({ type: "done" }, true),
  };
}

// A delayed send to a service (XState's sendTo with a delay) can only reach the run it was sent
// to: once that run stops or finishes, the send is dead. It used to stay armed, its timer and
// event held, until its delay ran out (up to 24 days), for every service that came and went.
for (const end of ["stopped", "finished"] as const) {
  test(`delayed sends to a service that ${end} are dropped with it`, () => {
    const notifications: AdapterNotification[] = [];
    const registry = new ServiceRegistry((n) => notifications.push(n));
    const received: MachineEvent[] = [];
    const child = listener(received);
    registry.start("org/m/i", "child", "run-1", child.starter, failure);
    registry.sendLater("org/m/i", "child", { type: "ping" }, LATER_MS, "later");
    registry.sendLater("org/m/i", "child", { type: "ping" }, LATER_MS); // one with no id
    assert.equal(registry.hasDelayed("later"), true);
    assert.equal(registry.idle, false);

    if (end === "stopped") registry.stop("org/m/i", "child");
    else child.finish();

    assert.equal(registry.hasDelayed("later"), false, "the send by id is gone");
    assert.equal(registry.idle, true, "nothing of the service is left");
    assert.deepEqual(received, []);
  });
}

test("a delayed send still reaches its running service, and a cancel still stops one", async () => {
  const registry = new ServiceRegistry(() => {});
  const received: MachineEvent[] = [];
  registry.start("org/m/i", "child", "run-1", listener(received).starter, failure);
  registry.sendLater("org/m/i", "child", { type: "soon" }, 1, "soon");
  registry.sendLater("org/m/i", "child", { type: "never" }, 5, "never");
  registry.cancelLater("org/m/i", "never");
  assert.equal(registry.hasDelayed("never"), false);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.deepEqual(received, [{ type: "soon" }]);
  assert.equal(registry.hasDelayed("soon"), false);
  registry.stop("org/m/i", "child");
  assert.equal(registry.idle, true);
});

// A service whose start throws (an invoke whose creator throws at once) ends there: nothing of
// it lives on. Its instance's entry used to stay behind, empty, so the registry never counted as
// idle again and its version could never be dropped from the sandbox (nor the entry freed).
test("a service whose start throws leaves nothing running", () => {
  const notifications: AdapterNotification[] = [];
  const registry = new ServiceRegistry((n) => notifications.push(n));
  const throwing: ServiceStarter = () => {
    throw new Error("no such service");
  };
  registry.start("org/m/i", "broken", "run-1", throwing, failure);
  assert.deepEqual(
    notifications.map((n) => n.type === "service-event" && n.final),
    [true],
  );
  assert.equal(registry.idle, true);
});
