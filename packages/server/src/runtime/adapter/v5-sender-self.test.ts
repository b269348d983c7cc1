// The instance's own ref in an event sent to its child (XState 5's `sender: self`), outside any
// sandbox, with XState 5 itself: the running child gets its stand-in parent there, whose events
// reach the instance, and the rest of the event as the machine made it; a look-alike of a ref
// written by hand, or another instance's step, gives the child nothing of the kind.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMachine, fromCallback, sendTo, type AnyStateMachine } from "xstate";
import type { JsonValue, MachineEvent } from "../adapter-protocol.js";
import { createV5Driver } from "./driver-v5.js";
import { MAX_DEPTH, MAX_NESTED_FIELDS } from "./v5-sender-self.js";

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

/**
 * A machine whose child, "kid", keeps every event it receives and answers `{ type: "pong" }` to
 * what `answerTo` finds in the event (its `sender`, unless told), when that has a `send`; the
 * parent sends it what `ping` makes of `self`, after `delay` ms if given.
 */
function withChild(
  ping: (self: unknown) => Record<string, unknown>,
  answerTo: (event: Record<string, unknown>) => unknown = (event) => event.sender,
  delay?: number,
) {
  const received: Array<Record<string, unknown>> = [];
  const machine = createMachine({
    initial: "on",
    states: {
      on: {
        invoke: {
          id: "kid",
          src: fromCallback(({ receive }) => {
            receive((event) => {
              const fields = event as unknown as Record<string, unknown>;
              received.push(fields);
              const sender = answerTo(fields) as { send?: (event: unknown) => void } | undefined;
              sender?.send?.({ type: "pong" });
            });
          }),
        },
        on: {
          ping: {
            actions: sendTo("kid", ({ self }) => ({ type: "ping", ...ping(self) }), { delay }),
          },
        },
      },
    },
  });
  return { machine: machine as AnyStateMachine, received };
}

/** Starts the child the first step asks for, sends the instance `ping`, delivers what it sends. */
async function pinged(machine: AnyStateMachine) {
  const driver = createV5Driver(machine);
  const first = driver.initial({});
  const reports: string[] = [];
  const [child] = first.effects.services.map((service) =>
    service.starter((event: MachineEvent) => reports.push(event.type)),
  );
  const persisted = JSON.parse(JSON.stringify(first.data.persisted)) as JsonValue;
  const step = driver.transition(persisted, { type: "ping" });
  // A delayed send's event goes to the same `send` of the run once its delay is over (services.ts).
  for (const message of step.effects.serviceMessages) child!.send!(message.event);
  await tick();
  child!.stop();
  return reports;
}

/** The delays of the sends to the child that `ping` makes. */
function delaysOf(machine: AnyStateMachine): Array<number | undefined> {
  const driver = createV5Driver(machine);
  const persisted = JSON.parse(JSON.stringify(driver.initial({}).data.persisted)) as JsonValue;
  const step = driver.transition(persisted, { type: "ping" });
  return step.effects.serviceMessages.map((message) => message.delayMs);
}

test("the child gets its stand-in parent for `self`, and its answer reaches the instance", async () => {
  const notJson = () => "kept";
  const { machine, received } = withChild((self) => ({ sender: self, n: 1, notJson }));
  assert.deepEqual(await pinged(machine), ["pong"]);
  const [event] = received;
  // Not the actor every instance's steps share (its sends would be dropped): the stand-in.
  assert.equal((event!.sender as { id?: unknown }).id, "kid.parent");
  assert.equal(event!.n, 1);
  assert.equal(event!.notJson, notJson, "the rest of the event is the machine's own");
});

test("a hand-written look-alike of a ref stays what it is, a plain object", async () => {
  const forged = { xstate$$type: 1, id: "kid.parent", send: undefined };
  const { machine, received } = withChild(() => ({ sender: forged }));
  assert.deepEqual(await pinged(machine), []);
  assert.equal(received[0]!.sender, forged);
});

test("the fields that are the ref are replaced, top-level or nested; the event the machine made is left", async () => {
  const made: Array<Record<string, unknown>> = [];
  const untouched = { n: 2 };
  const { machine, received } = withChild((self) => {
    const fields = { replyTo: self, nested: { sender: self, untouched }, list: [1, self] };
    made.push(fields);
    return fields;
  });
  await pinged(machine);
  const event = received[0]!;
  const nested = event.nested as { sender: { id?: unknown }; untouched: unknown };
  assert.equal((event.replyTo as { id?: unknown }).id, "kid.parent");
  assert.equal(nested.sender.id, "kid.parent");
  assert.equal(nested.untouched, untouched, "what holds no ref is handed on as it is");
  assert.equal((event.list as Array<{ id?: unknown }>)[1]!.id, "kid.parent");
  assert.equal((event.list as unknown[])[0], 1);
  // What the action made still holds its `self`, not the mark the adapter put on its copy.
  const self = made[0]!.replyTo;
  assert.notEqual(nested, made[0]!.nested);
  assert.equal((made[0]!.nested as { sender: unknown }).sender, self);
  assert.equal((made[0]!.list as unknown[])[1], self);
});

test("the child's answer to a ref nested in an object or an array reaches the instance", async () => {
  const inObject = withChild(
    (self) => ({ meta: { sender: self } }),
    (event) => (event.meta as { sender?: unknown } | undefined)?.sender,
  );
  assert.deepEqual(await pinged(inObject.machine), ["pong"]);
  const inArray = withChild(
    (self) => ({ replyTo: [self] }),
    (event) => (event.replyTo as unknown[] | undefined)?.[0],
  );
  assert.deepEqual(await pinged(inArray.machine), ["pong"]);
});

test("a delayed send's nested ref is answered too", async () => {
  const { machine } = withChild(
    (self) => ({ meta: { replyTo: [self] } }),
    (event) => (event.meta as { replyTo?: unknown[] } | undefined)?.replyTo?.[0],
    10,
  );
  assert.deepEqual(delaysOf(machine), [10]);
  assert.deepEqual(await pinged(machine), ["pong"]);
});

test("a nested getter is read once, and its ref answered", async () => {
  let reads = 0;
  const { machine, received } = withChild(
    (self) => ({
      meta: {
        get sender() {
          reads++;
          // A second read would give the child a look-alike, which answers nobody.
          return reads === 1 ? self : { xstate$$type: 1, id: "kid.parent" };
        },
      },
    }),
    (event) => (event.meta as { sender?: unknown }).sender,
  );
  assert.deepEqual(await pinged(machine), ["pong"]);
  assert.equal(reads, 1);
  assert.equal((received[0]!.meta as { sender: { id?: unknown } }).sender.id, "kid.parent");
});

test("class instances are not looked into: the ref in one is handed on as it is", async () => {
  class Envelope {
    constructor(readonly sender: unknown) {}
  }
  let envelope: Envelope | undefined;
  const { machine, received } = withChild(
    (self) => ({ meta: (envelope = new Envelope(self)) }),
    (event) => (event.meta as Envelope).sender,
  );
  assert.deepEqual(await pinged(machine), []);
  assert.equal(received[0]!.meta, envelope);
});

/** Nests `inner` under `levels` objects: nest(1, x) is `{ next: x }`. */
function nest(levels: number, inner: unknown): unknown {
  return levels === 0 ? inner : { next: nest(levels - 1, inner) };
}

function reachedAt(event: Record<string, unknown>, levels: number): unknown {
  let at: unknown = event.meta;
  for (let i = 1; i < levels; i++) at = (at as { next?: unknown } | undefined)?.next;
  return (at as { sender?: unknown } | undefined)?.sender;
}

test(`a ref is looked for ${MAX_DEPTH} levels of objects below the event, no deeper`, async () => {
  // meta is the first level; each `next` one more; the ref is a field of the last.
  const at = (levels: number) =>
    withChild(
      (self) => ({ meta: nest(levels - 1, { sender: self }) }),
      (event) => reachedAt(event, levels),
    );
  assert.deepEqual(await pinged(at(MAX_DEPTH).machine), ["pong"]);
  const tooDeep = at(MAX_DEPTH + 1);
  assert.deepEqual(await pinged(tooDeep.machine), []);
  // A cycle ends there too.
  const cyclic = withChild(
    (self) => {
      const loop: Record<string, unknown> = {};
      loop.next = loop;
      return { loop, meta: { sender: self } };
    },
    (event) => (event.meta as { sender?: unknown }).sender,
  );
  assert.deepEqual(await pinged(cyclic.machine), ["pong"]);
});

test(`at most ${MAX_NESTED_FIELDS} nested fields are read; the first container past them ends the search`, async () => {
  // `list` takes `size` fields of the budget, `meta` one more.
  const withList = (list: unknown) =>
    withChild(
      (self) => ({ list, meta: { sender: self } }),
      (event) => (event.meta as { sender?: unknown }).sender,
    ).machine;
  assert.deepEqual(await pinged(withList(Array(MAX_NESTED_FIELDS - 1).fill(0))), ["pong"]);
  assert.deepEqual(await pinged(withList(Array(MAX_NESTED_FIELDS).fill(0))), []);
  // The size is known before any field is read: a length of 2^32 - 1 costs nothing.
  let read = 0;
  const huge = new Proxy([], {
    get: (target, key) => {
      if (key === "length") return 2 ** 32 - 1;
      read++;
      return Reflect.get(target, key) as unknown;
    },
  });
  assert.deepEqual(await pinged(withList(huge)), []);
  assert.equal(read, 0);
  // An object too big to look into is counted once, however often the event holds it.
  let listed = 0;
  const big = new Proxy(Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`k${i}`, i])), {
    ownKeys: (target) => {
      listed++;
      return Reflect.ownKeys(target);
    },
  });
  assert.deepEqual(await pinged(withList(Array(100).fill(big))), []);
  assert.equal(listed, 1);
});
