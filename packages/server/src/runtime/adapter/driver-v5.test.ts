// The v5 driver's services outside any sandbox, with XState 5 itself: what a running child sends
// its parent is reported as it goes, and stopping a child stops it (its cleanup runs, nothing
// more is reported, not even a done event).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  assign,
  createMachine,
  fromCallback,
  fromPromise,
  sendParent,
  spawnChild,
  type AnyStateMachine,
} from "xstate";
import type { JsonValue, MachineEvent } from "../adapter-protocol.js";
import { createV5Driver } from "./driver-v5.js";

type Report = [type: string, final: boolean];

/** Starts the services the machine's first step asks for; answers what they report. */
function startServices(machine: AnyStateMachine) {
  const step = createV5Driver(machine).initial({});
  const reports: Report[] = [];
  const running = step.effects.services.map((service) =>
    service.starter((event: MachineEvent, final: boolean) => reports.push([event.type, final])),
  );
  return { reports, running, ids: step.effects.services.map((service) => service.id) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 30));

test("a callback's sendBack is reported, the service running on; stopped, it is cleaned up", async () => {
  let cleanedUp = false;
  const machine = createMachine({
    initial: "on",
    states: {
      on: {
        invoke: {
          id: "cb",
          src: fromCallback(({ sendBack }) => {
            sendBack({ type: "notJson", n: 1n });
            sendBack({ type: "hello" });
            const timer = setInterval(() => sendBack({ type: "tick" }), 5);
            return () => {
              cleanedUp = true;
              clearInterval(timer);
            };
          }),
        },
      },
    },
  });
  const { reports, running, ids } = startServices(machine);
  assert.deepEqual(ids, ["cb"]);
  await tick();
  // The BigInt event cannot reach the instance: dropped, and the ones after it still come.
  assert.deepEqual(reports[0], ["hello", false]);
  assert.deepEqual(reports[1], ["tick", false]);
  running[0]!.stop();
  await tick();
  const count = reports.length;
  await tick();
  assert.ok(cleanedUp, "the callback's cleanup ran");
  assert.equal(reports.length, count, "nothing reported after the stop");
  assert.ok(!reports.some(([type]) => type.startsWith("xstate.done.actor")), "no done for a stop");
});

test("a child machine's sendParent events come as it runs, its done event last and final", async () => {
  const child = createMachine({
    initial: "a",
    entry: sendParent({ type: "progress" }),
    states: {
      a: { after: { 10: "b" }, exit: sendParent({ type: "progress" }) },
      b: { type: "final" },
    },
    output: () => 42,
  });
  const machine = createMachine({
    initial: "on",
    states: { on: { invoke: { id: "kid", src: child } } },
  });
  const { reports } = startServices(machine);
  await tick();
  assert.deepEqual(reports, [
    ["progress", false],
    ["progress", false],
    ["xstate.done.actor.kid", true],
  ]);
});

const later = fromPromise(() => new Promise<number>((resolve) => setTimeout(() => resolve(7), 5)));

test("a child spawned by spawnChild without an id is one service, not two", () => {
  const machine = createMachine({ entry: spawnChild(later) });
  const step = createV5Driver(machine).initial({});
  assert.equal(step.effects.services.length, 1);
});

test("a child spawned in an assign with a systemId can be spawned again, by the next instance", () => {
  const machine = createMachine({
    initial: "idle",
    states: {
      idle: {
        on: {
          spawn: {
            actions: assign({ r: ({ spawn }) => spawn(later, { id: "sp", systemId: "w" }) }),
          },
        },
      },
    },
  });
  const driver = createV5Driver(machine);
  const persisted = driver.initial({}).data.persisted as unknown as JsonValue;
  for (const instance of ["first", "second"]) {
    const step = driver.transition(persisted, { type: "spawn" });
    assert.deepEqual(
      step.effects.services.map((service) => service.id),
      ["sp"],
      instance,
    );
  }
});
