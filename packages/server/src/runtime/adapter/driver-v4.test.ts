// The v4 driver's services outside any sandbox, with XState 4 itself: an invoked observable and an
// invoked child machine run as XState 4's interpreter runs them. What they send the instance is
// reported as it goes, their end (done or error) last and final; a stopped one reports nothing
// more.
import assert from "node:assert/strict";
import { test } from "node:test";
import { actions, assign, createMachine, send, sendParent } from "xstate4";
import type { JsonValue, MachineEvent } from "../adapter-protocol.js";
import { createV4Driver } from "./driver-v4.js";

type Report = { event: MachineEvent; final: boolean };
type Started = { stop: () => void; send?: (event: MachineEvent) => void };

/** Starts the services the machine's first step asks for; answers what they report. */
function startServices(machine: unknown) {
  const driver = createV4Driver(machine as never);
  const step = driver.initial({});
  const reports: Report[] = [];
  const running: Started[] = step.effects.services.map((service) =>
    service.starter((reported, final) => reports.push({ event: reported, final })),
  );
  const types = () => reports.map(({ event, final }) => [event.type, final]);
  return { driver, step, reports, types, running };
}

const tick = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

/** An observable (what XState 4 subscribes to) emitting `values` 5 ms apart, then completing. */
function observable(values: unknown[], end: "complete" | "error" = "complete") {
  const state = { unsubscribed: false };
  const source = {
    subscribe(next: (v: unknown) => void, error: (e: unknown) => void, complete: () => void) {
      const timers = values.map((value, i) => setTimeout(() => next(value), 5 * (i + 1)));
      const last = 5 * (values.length + 1);
      timers.push(
        setTimeout(() => (end === "complete" ? complete() : error(new Error("dried up"))), last),
      );
      return {
        unsubscribe: () => {
          state.unsubscribed = true;
          timers.forEach((timer) => clearTimeout(timer));
        },
      };
    },
  };
  return { source, state };
}

const watching = (source: unknown) =>
  createMachine(
    {
      predictableActionArguments: true,
      initial: "on",
      states: { on: { invoke: { id: "obs", src: "obs" } } },
    },
    { services: { obs: () => source as never } },
  );

test("an observable's values are events to the instance; its completion is done.invoke", async () => {
  const { source } = observable([{ type: "n", i: 1 }, "plain", { type: "n", i: 3 }]);
  const { types, reports } = startServices(watching(source));
  await tick(60);
  assert.deepEqual(types(), [
    ["n", false],
    ["plain", false],
    ["n", false],
    ["done.invoke.obs", true],
  ]);
  assert.deepEqual(reports[2]!.event, { type: "n", i: 3 });
});

test("an observable's error is error.platform; a stopped one is unsubscribed", async () => {
  const failing = observable([], "error");
  const first = startServices(watching(failing.source));
  await tick();
  assert.deepEqual(first.types(), [["error.platform.obs", true]]);

  const endless = observable(Array.from({ length: 20 }, () => "n"));
  const second = startServices(watching(endless.source));
  await tick(12);
  second.running[0]!.stop();
  const count = second.reports.length;
  await tick(120);
  assert.ok(endless.state.unsubscribed, "the stop unsubscribed");
  assert.equal(second.reports.length, count, "nothing reported after the stop");
});

const kid = createMachine({
  id: "kid",
  predictableActionArguments: true,
  initial: "greeting",
  context: { n: 0, got: 0 },
  states: {
    greeting: {
      entry: sendParent((context: { n: number }) => ({ type: "hello", n: context.n })),
      on: {
        reply: {
          target: "done",
          actions: assign({ got: (_: unknown, event: { value: number }) => event.value }),
        },
      },
    },
    done: {
      type: "final",
      data: (context: { n: number; got: number }) => ({ n: context.n, got: context.got }),
    },
  },
} as never);

const parentOf = (child: unknown, extra: Record<string, unknown> = {}) =>
  createMachine({
    predictableActionArguments: true,
    initial: "on",
    context: { base: 4 },
    states: {
      on: {
        invoke: { id: "kid", src: child, data: { n: (c: { base: number }) => c.base }, ...extra },
        on: { leave: "off" },
      },
      off: {},
    },
  } as never);

test("a child machine: context from data, sendParent, a parent's event, done data", async () => {
  const { types, reports, running } = startServices(parentOf(kid));
  await tick();
  assert.deepEqual(reports[0], { event: { type: "hello", n: 4 }, final: false });
  running[0]!.send!({ type: "reply", value: 9 });
  await tick();
  assert.deepEqual(types(), [
    ["hello", false],
    ["done.invoke.kid", true],
  ]);
  assert.deepEqual(reports[1]!.event, { type: "done.invoke.kid", data: { n: 4, got: 9 } });
});

test("the parent's send to the child's id is delivered to the child's run", () => {
  const machine = createMachine({
    predictableActionArguments: true,
    initial: "on",
    states: {
      on: {
        invoke: { id: "kid", src: kid },
        on: { hello: { actions: send({ type: "reply", value: 1 }, { to: "kid" }) } },
      },
    },
  } as never);
  const { driver, step } = startServices(machine);
  const next = driver.transition(step.data.persisted as unknown as JsonValue, {
    type: "hello",
    n: 0,
  });
  assert.deepEqual(next.effects.serviceMessages, [
    { serviceId: "kid", event: { type: "reply", value: 1 } },
  ]);
});

test("a child stopped when its parent leaves the state reports nothing more", async () => {
  const chatter = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: {
      a: { entry: sendParent("tick"), after: { 5: "b" } },
      b: { entry: sendParent("tick"), after: { 5: "a" } },
    },
  });
  const { driver, step, reports, running } = startServices(parentOf(chatter));
  await tick();
  assert.ok(reports.length >= 2, "the child ticks on its own delayed events");
  const left = driver.transition(step.data.persisted as unknown as JsonValue, { type: "leave" });
  assert.deepEqual(left.data.servicesStopped, ["kid"]);
  running[0]!.stop();
  const count = reports.length;
  await tick(60);
  assert.equal(reports.length, count);
  assert.ok(
    reports.every(({ final }) => !final),
    "a stop is no done",
  );
});

test("a child machine whose action throws gives error.platform, final", async () => {
  const bomb = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: {
      a: {
        on: {
          go: {
            actions: () => {
              throw new Error("boom");
            },
          },
        },
      },
    },
  });
  const { reports, running } = startServices(parentOf(bomb));
  running[0]!.send!({ type: "go" });
  await tick();
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.event.type, "error.platform.kid");
  assert.equal(reports[0]!.final, true);
  assert.equal((reports[0]!.event as { data?: { message?: string } }).data?.message, "boom");
});

test("a child machine runs its own services: its invoked promise's result ends it", async () => {
  const waiter = createMachine(
    {
      predictableActionArguments: true,
      initial: "waiting",
      context: { n: 0 },
      states: {
        waiting: {
          invoke: {
            src: "double",
            onDone: {
              target: "done",
              actions: assign({ n: (_: unknown, e: { data: number }) => e.data }),
            },
          },
        },
        done: { type: "final", data: (context: { n: number }) => context.n },
      },
    } as never,
    { services: { double: (context: { n: number }) => Promise.resolve(context.n * 2) } } as never,
  );
  const { reports } = startServices(parentOf(waiter));
  await tick();
  assert.deepEqual(reports, [{ event: { type: "done.invoke.kid", data: 8 }, final: true }]);
});

test("autoForward: the events the parent takes reach the child too", () => {
  const { driver, step } = startServices(parentOf(kid, { autoForward: true }));
  const next = driver.transition(step.data.persisted as unknown as JsonValue, { type: "reply" });
  assert.deepEqual(next.effects.serviceMessages, [{ serviceId: "kid", event: { type: "reply" } }]);
});

// Machine code is hostile: a child that sends itself events forever must not hold the sandbox
// (XState 4's interpreter would loop there for good), and one whose events multiply must not
// grow without bound.
test("a child that sends itself events forever yields between turns, and its stop ends it", async () => {
  const looper = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: {
      a: { entry: [sendParent("spin"), send("go")], on: { go: "b" } },
      b: { entry: [sendParent("spin"), send("go")], on: { go: "a" } },
    },
  });
  const { reports, running } = startServices(parentOf(looper));
  // Reached at all only because the start returned: the loop waits for later turns.
  await tick(20);
  assert.ok(reports.length > 64, "it goes on, turn after turn");
  running[0]!.stop();
  const count = reports.length;
  await tick(20);
  assert.equal(reports.length, count);
});

test("a child whose self-sent events multiply fails with error.platform", async () => {
  const doubler = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: { a: { entry: send("go"), on: { go: { actions: [send("go"), send("go")] } } } },
  });
  const { types, reports } = startServices(parentOf(doubler));
  // Up to 5 s: the queue fills a turn's worth of steps at a time.
  for (let waited = 0; reports.length === 0 && waited < 5_000; waited += 50) await tick(50);
  assert.deepEqual(types(), [["error.platform.kid", true]]);
});

test("autoForward inside a child machine: the events the child takes reach its own child", async () => {
  // XState 4's interpreter forwards every event a machine takes to its autoForward children,
  // a child machine's interpreter too: here the grandchild answers the forwarded ping.
  const leaf = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: { a: { on: { ping: { actions: sendParent("pong") } } } },
  });
  const middle = createMachine({
    predictableActionArguments: true,
    initial: "on",
    states: {
      on: {
        invoke: { id: "leaf", src: leaf, autoForward: true },
        on: { pong: { actions: sendParent("pong-up") } },
      },
    },
  } as never);
  const { reports, running } = startServices(parentOf(middle));
  running[0]!.send!({ type: "ping" });
  await tick();
  assert.deepEqual(
    reports.map(({ event }) => event.type),
    ["pong-up"],
  );
  running[0]!.stop();
});

test("a child's delayed sendParent is cancelled by its id, as a debounce does", async () => {
  // Each input cancels the change the one before it left waiting: the parent hears of the last.
  const debouncer = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: {
      a: {
        on: {
          input: {
            actions: [
              actions.cancel("debounce"),
              sendParent("changed", { delay: 20, id: "debounce" }),
            ],
          },
        },
      },
    },
  });
  const { reports, running } = startServices(parentOf(debouncer));
  running[0]!.send!({ type: "input" });
  running[0]!.send!({ type: "input" });
  running[0]!.send!({ type: "input" });
  // Due after every 20 ms timer the inputs armed: those fire first.
  await tick(80);
  assert.deepEqual(
    reports.map(({ event }) => event.type),
    ["changed"],
  );
  running[0]!.stop();
});

test("a child machine that throws an error whose name cannot be read still fails with error.platform", async () => {
  // Machine code is hostile: what it throws is read defensively, or the child ended without a
  // word, and its parent waited for it until the settle deadline.
  const trap = createMachine({
    predictableActionArguments: true,
    initial: "a",
    states: {
      a: {
        on: {
          go: {
            actions: () => {
              const error = new Error("boom");
              Object.defineProperty(error, "name", {
                get() {
                  throw new Error("no name");
                },
              });
              throw error;
            },
          },
        },
      },
    },
  });
  const { reports, running } = startServices(parentOf(trap));
  running[0]!.send!({ type: "go" });
  await tick();
  assert.deepEqual(
    reports.map(({ event, final }) => [event.type, final]),
    [["error.platform.kid", true]],
  );
});

test("a child machine that invokes itself fails at the nesting bound instead of recursing", () => {
  // Each level invokes the same machine again as it starts: without a bound, until the stack ends.
  const loop: ReturnType<typeof createMachine> = createMachine({
    id: "loop",
    predictableActionArguments: true,
    initial: "in",
    states: { in: { invoke: { id: "kid", src: () => loop } } },
  });
  const { reports } = startServices(loop);
  assert.equal(reports.length, 1);
  const [{ event, final }] = reports as [Report];
  assert.equal(event.type, "error.platform.kid");
  assert.equal(final, true);
  assert.match(JSON.stringify(event), /nest deeper than 8/);
});

test("child machines that multiply fail at the bound on live children", () => {
  // Three parallel regions that each invoke the machine again and outlive a child that failed:
  // 3 + 9 + … + 3^8 children alive at once without a bound. What failed below is noted by the
  // child that caught it (its actions run in the sandbox, as the child's own).
  const caught: string[] = [];
  const region = (id: string) => ({
    initial: "run",
    states: {
      run: {
        invoke: {
          id,
          src: () => fan,
          onError: {
            target: "caught",
            actions: (_: unknown, event: { data?: { message?: string } }) =>
              void caught.push(event.data?.message ?? ""),
          },
        },
      },
      caught: {},
    },
  });
  const fan: ReturnType<typeof createMachine> = createMachine({
    id: "fan",
    predictableActionArguments: true,
    type: "parallel",
    states: { a: region("a"), b: region("b"), c: region("c") },
  });
  const { running } = startServices(fan);
  try {
    assert.ok(
      caught.some((message) => /child machines run under one invoke/.test(message)),
      `caught: ${[...new Set(caught)].join("; ")}`,
    );
  } finally {
    for (const run of running) run.stop();
  }
});
