// `self` in an XState 5 machine's code, outside any sandbox: a step is computed with one actor
// scope per machine, whose actor is shared by every instance and never started. What actions and
// assigns send through `self` must not pile up in it (it would for as long as the version stays
// loaded), and one instance's actions must see their own instance, not that shared actor.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assign, createMachine, emit, type AnyActorRef } from "xstate";
import type { JsonValue, MachineEvent } from "../adapter-protocol.js";
import { createV5Driver } from "./driver-v5.js";
import type { DriverStep } from "./driver.js";

/** Runs a step's actions as the handler does after the commit, its `self` pointed at `sink`. */
function execute(step: DriverStep, sink: (event: unknown) => void = () => {}): void {
  step.effects.self?.connect(sink);
  for (const action of step.effects.actions) action();
}

/**
 * The scope's shared actor (what an assign sees as `self`) after `steps` steps, started: XState
 * then processes whatever waited in its mailbox, which counts each `NEXT` in its context.
 */
function sharedActorAfter(
  steps: number,
  onGo: "action" | "assign",
): { count: number; sent: unknown[] } {
  let shared: AnyActorRef | undefined;
  const sendNext = ({ self }: { self: AnyActorRef }) =>
    self.send({ type: "NEXT", pad: "x".repeat(1_000) });
  const machine = createMachine({
    context: { count: 0 },
    initial: "idle",
    on: { NEXT: { actions: assign({ count: ({ context }) => context.count + 1 }) } },
    states: {
      idle: {
        on: {
          GO: {
            actions: [
              assign(({ self }) => {
                shared = self;
                if (onGo === "assign") sendNext({ self });
                return {};
              }),
              ...(onGo === "action" ? [sendNext] : []),
            ],
          },
        },
      },
    },
  });
  const driver = createV5Driver(machine);
  const persisted = driver.initial({}).data.persisted as unknown as JsonValue;
  const sent: unknown[] = [];
  for (let i = 0; i < steps; i++)
    execute(driver.transition(persisted, { type: "GO" }), (e) => sent.push(e));
  assert.ok(shared, "the assign saw the scope's actor");
  shared.start();
  const count = (shared.getSnapshot() as { context: { count: number } }).context.count;
  shared.stop();
  return { count, sent };
}

test("an action's self.send leaves nothing in the actor shared by the machine's instances", () => {
  const { count, sent } = sharedActorAfter(200, "action");
  assert.equal(count, 0, "no NEXT waited in the shared actor");
  // Each went to its own step's sink instead.
  assert.equal(sent.length, 200);
  assert.equal((sent[0] as MachineEvent).type, "NEXT");
});

test("a self.send in an assign leaves nothing in the actor shared by the machine's instances", () => {
  assert.equal(sharedActorAfter(200, "assign").count, 0, "no NEXT waited in the shared actor");
});

test("an action's self is its own instance's: getSnapshot shows its state, sends reach its step's sink", () => {
  const seen: Array<[string, unknown, unknown]> = [];
  const tell =
    (where: string) =>
    ({ self }: { self: AnyActorRef }) => {
      const snapshot = self.getSnapshot() as { value: unknown; context: { name?: unknown } };
      seen.push([where, snapshot.value, snapshot.context.name]);
      self.send({ type: "PING", from: String(snapshot.context.name) });
    };
  const machine = createMachine({
    context: { name: "default" },
    initial: "a",
    states: {
      a: { entry: tell("entry a"), on: { GO: { target: "b", actions: tell("go") } } },
      b: { entry: tell("entry b") },
    },
  });
  const driver = createV5Driver(machine);
  const sinks: Record<string, unknown[]> = { ann: [], bob: [] };
  const persisted: Record<string, JsonValue> = {};
  for (const name of ["ann", "bob"]) {
    const first = driver.initial({ name });
    execute(first, (event) => sinks[name]!.push(event));
    persisted[name] = first.data.persisted as unknown as JsonValue;
  }
  for (const name of ["ann", "bob"])
    execute(driver.transition(persisted[name]!, { type: "GO" }), (e) => sinks[name]!.push(e));
  // As XState 5's actor: the first step's actions see the state it starts in; an event's see the
  // state before it (the actor stores the next one after running them).
  assert.deepEqual(seen, [
    ["entry a", "a", "ann"],
    ["entry a", "a", "bob"],
    ["go", "a", "ann"],
    ["entry b", "a", "ann"],
    ["go", "a", "bob"],
    ["entry b", "a", "bob"],
  ]);
  for (const name of ["ann", "bob"])
    assert.deepEqual(sinks[name], Array(3).fill({ type: "PING", from: name }), name);
});

test("what an assign subscribes to the shared actor or its system is not kept there", () => {
  let shared: AnyActorRef | undefined;
  let called = 0;
  const count = () => {
    called++;
  };
  const machine = createMachine({
    initial: "idle",
    // Run when the shared actor starts below: what listened to it then hears this.
    entry: emit({ type: "ping" }),
    states: {
      idle: {
        on: {
          GO: {
            actions: assign(({ self, system }) => {
              shared = self;
              self.subscribe(count);
              self.on("ping", count);
              (system as { inspect: (observer: () => void) => unknown }).inspect(count);
              return {};
            }),
          },
        },
      },
    },
  });
  const driver = createV5Driver(machine);
  const persisted = driver.initial({}).data.persisted as unknown as JsonValue;
  for (let i = 0; i < 100; i++) execute(driver.transition(persisted, { type: "GO" }));
  assert.ok(shared, "the assign saw the scope's actor");
  // Started, the actor would tell its observers its first state, its inspectors of its start and
  // its listeners of the `ping` it emits: it holds none of them.
  shared.start();
  shared.stop();
  assert.equal(called, 0);
});

test("an action's self carries the system its actions get, as XState's actor does", () => {
  const seen: Array<[unknown, unknown]> = [];
  const machine = createMachine({
    initial: "idle",
    states: {
      idle: {
        entry: ({ self, system }) => {
          seen.push([self.system, system]);
        },
        on: {
          GO: {
            actions: ({ self, system }) => {
              // `self.system.get(…)`, as XState's docs write it, must not throw.
              seen.push([self.system.get("nobody"), undefined], [self.system, system]);
            },
          },
        },
      },
    },
  });
  const driver = createV5Driver(machine);
  const first = driver.initial({});
  execute(first);
  execute(driver.transition(first.data.persisted as unknown as JsonValue, { type: "GO" }));
  assert.equal(seen.length, 3);
  for (const [fromSelf, given] of seen) assert.equal(fromSelf, given);
  assert.notEqual(seen[0]![1], undefined);
});

test("an action's self has an id and a sessionId, the same in every step of every instance, as in an assign", () => {
  const seen: Array<[string, unknown, unknown]> = [];
  const tell =
    (where: string) =>
    ({ self }: { self: AnyActorRef }) => {
      seen.push([where, self.id, self.sessionId]);
    };
  const machine = createMachine({
    context: { name: "default" },
    initial: "a",
    states: {
      a: {
        entry: tell("entry"),
        on: {
          GO: {
            target: "b",
            actions: [
              tell("action"),
              assign(({ self }) => {
                seen.push(["assign", self.id, self.sessionId]);
                return {};
              }),
            ],
          },
        },
      },
      b: {},
    },
  });
  const driver = createV5Driver(machine);
  for (const name of ["ann", "bob"]) {
    const first = driver.initial({ name });
    execute(first);
    const persisted = first.data.persisted as unknown as JsonValue;
    for (let i = 0; i < 2; i++) execute(driver.transition(persisted, { type: "GO" }));
  }
  // Those of the actor `createActor(machine)` makes first: its session's, named for it.
  assert.equal(seen.length, 2 * 5);
  for (const [where, id, sessionId] of seen) {
    assert.equal(id, "x:0", where);
    assert.equal(sessionId, "x:0", where);
  }
});

test("an action's self holds its id, sessionId, send, getSnapshot and system only, frozen", () => {
  let self: object | undefined;
  const machine = createMachine({ entry: (args) => void (self = args.self) });
  execute(createV5Driver(machine).initial({}));
  assert.ok(self);
  assert.deepEqual(Object.keys(self).sort(), ["getSnapshot", "id", "send", "sessionId", "system"]);
  assert.ok(Object.isFrozen(self));
});
