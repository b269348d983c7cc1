// The instance's own ref in an event sent to its child (XState 5's `sender: self`), outside any
// sandbox, with XState 5 itself: the running child gets its stand-in parent there, whose events
// reach the instance, and the rest of the event as the machine made it; a look-alike of a ref
// written by hand, or another instance's step, gives the child nothing of the kind.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createMachine, fromCallback, sendTo, type AnyStateMachine } from "xstate";
import type { JsonValue, MachineEvent } from "../adapter-protocol.js";
import { createV5Driver } from "./driver-v5.js";

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

/**
 * A machine whose child, "kid", keeps every event it receives and answers `{ type: "pong" }` to
 * the event's `sender`, when that has a `send`; the parent sends it what `ping` makes of `self`.
 */
function withChild(ping: (self: unknown) => Record<string, unknown>) {
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
              const sender = fields.sender as { send?: (event: unknown) => void } | undefined;
              sender?.send?.({ type: "pong" });
            });
          }),
        },
        on: { ping: { actions: sendTo("kid", ({ self }) => ({ type: "ping", ...ping(self) })) } },
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
  for (const message of step.effects.serviceMessages) child!.send!(message.event);
  await tick();
  child!.stop();
  return reports;
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

test("only the top-level field that is the ref is replaced; the event the machine made is left", async () => {
  const made: Array<Record<string, unknown>> = [];
  const { machine, received } = withChild((self) => {
    const fields = { replyTo: self, nested: { sender: self } };
    made.push(fields);
    return fields;
  });
  await pinged(machine);
  assert.equal((received[0]!.replyTo as { id?: unknown }).id, "kid.parent");
  assert.equal(received[0]!.nested, made[0]!.nested, "deeper fields are handed on as they are");
  // What the action made still holds its `self`, not the mark the adapter put on its copy.
  assert.equal(made[0]!.replyTo, (made[0]!.nested as { sender: unknown }).sender);
});
