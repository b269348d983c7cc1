// v5: the request/response pattern between an instance and its child. The instance sends its
// invoked child an event carrying its own ref (`sendTo("worker", ({ self }) => ({ type: "ping",
// sender: self }))`, or nested: `meta: { sender: self }`, `replyTo: ["x", self]`) and the child
// answers to that ref (`sendTo(({ event }) => event.sender, …)`): the answer reaches the instance,
// at once or after a delay, as it does XState's own actor. A hand-written look-alike of a ref, or
// a string, is no ref: the child fails on it, as in XState.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { runInMemory, type Observed } from "../support/in-memory-machine.js";

const FIXTURE = "reply-to-sender-v5.js";
const STARTS_THE_WORKER = ["start", "again"];
let h: Harness;
let machineName: string;
let n = 0;

before(async () => {
  // A short settle deadline: an answer that never comes leaves the instance where it was.
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 2_000 });
  machineName = await h.deploy(FIXTURE, "v5-import", "replies");
});
after(() => h.dispose());

/** Where XState's own actor ends after `events` (each followed by 100 ms of its clock). */
async function inMemory(events: string[]): Promise<Observed> {
  const memory = await runInMemory(FIXTURE, 5);
  try {
    for (const type of events) {
      await memory.send({ type });
      await memory.advance(100);
    }
    return memory.observe();
  } finally {
    memory.stop();
  }
}

/**
 * Where a fresh engine instance ends after `events`. A send's answer waits until the services it
 * started settle: the one that starts the worker, which runs until the instance leaves the state,
 * is answered only after a later event (the worker's answer) ends the run, so it is not awaited.
 */
async function inEngine(events: string[]): Promise<{ value: unknown; context: unknown }> {
  const at = { orgId: ORG, machineName, instanceName: `i-${++n}` };
  await h.engine.createInstance({ ...at, authContext: {} });
  const starting: Array<Promise<unknown>> = [];
  for (const event of events) {
    const sent = h.engine.sendEvent({ ...at, event, authContext: {} });
    if (STARTS_THE_WORKER.includes(event)) starting.push(sent);
    else await sent;
  }
  await Promise.all(starting);
  const { state, context } = await h.engine.inspectInstance(at);
  return { value: state, context };
}

const cases: Array<[string, string[], unknown]> = [
  ["the child's answer to `sender: self` reaches the instance", ["start", "ping"], ["pong:sender"]],
  [
    "the child's answer to `replyTo: self` reaches the instance",
    ["start", "ask"],
    ["pong:replyTo"],
  ],
  ["a delayed send's `sender: self` is answered too", ["start", "pingLater"], ["pong:sender"]],
  [
    "the child's answer to a ref nested in an object reaches the instance",
    ["start", "pingNested"],
    ["pong:meta.sender"],
  ],
  [
    "the child's answer to a ref nested in an array reaches the instance",
    ["start", "askAll"],
    ["pong:replyTo[1]"],
  ],
  [
    "a delayed send's nested ref is answered too",
    ["start", "pingNestedLater"],
    ["pong:meta.sender"],
  ],
  [
    "a new run of the child answers the instance again",
    ["start", "ping", "again", "ask"],
    ["pong:sender", "pong:replyTo"],
  ],
  [
    "a hand-written look-alike of a ref is none: the child fails on it",
    ["start", "forged"],
    ["error:target._send is not a function"],
  ],
  [
    "a string where the ref should be names no actor: the child fails",
    ["start", "named"],
    ["error:Unable to send event to actor 'replies' from machine 'worker'."],
  ],
];

for (const [title, events, heard] of cases) {
  test(`v5: ${title}`, async () => {
    const expected = await inMemory(events);
    assert.deepEqual((expected.context as { heard: unknown }).heard, heard, "XState's own actor");
    const actual = await inEngine(events);
    assert.deepEqual(actual, { value: expected.value, context: expected.context });
  });
}
