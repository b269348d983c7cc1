// An XState 5 custom action's `self.send`: the step is committed before its actions run, so what
// an action sends its own instance comes back from the sandbox and is applied after that step,
// as a service's event is, whether it was sent at once or later from a timer. Only JSON events
// go, and only so many per step (each drop is said once per step in the machine log). The
// sandbox names the instance and the step, and runs machine code: an event it names for an
// instance whose step it did not run, or for another org's, changes nothing. A machine whose every
// step's action sends it another event is stopped after maxSelfEvents of them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { SelfEventListener } from "../../src/runtime/machine-runtime.js";
import { ORG, OTHER_ORG, startHarness, type Harness } from "../support/engine-harness.js";

const DEADLINE_MS = 10_000;

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function start(
  maxSelfEvents?: number,
  backlogEvents = 10_000,
): Promise<{ h: Harness; at: (name: string) => Address }> {
  // By default a backlog large enough that only the sandbox's cap on one step's sends stops a flood.
  const h = await startHarness({
    clock: systemClock,
    serviceBacklog: { maxEvents: backlogEvents, maxChars: 64 * 1024 * 1024 },
    ...(maxSelfEvents === undefined ? {} : { maxSelfEvents }),
  });
  const machineName = await h.deploy("action-self-send-v5.js", "v5-import", "action-self-send");
  return { h, at: (instanceName) => ({ orgId: ORG, machineName, instanceName }) };
}

type Address = { orgId: string; machineName: string; instanceName: string };

const stateOf = async (h: Harness, at: Address) => (await h.engine.inspectInstance(at)).state;
/** The fixture's `count`: how many steps of the loop and bounce instances were applied. */
const countOf = async (h: Harness, at: Address) =>
  ((await h.engine.inspectInstance(at)).context as { count: number }).count;
/** The warnings of self-send chains stopped past maxSelfEvents. */
const chainDrops = (h: Harness) =>
  h.logs.filter((log) => log.message.includes("in a row; dropped"));
/** The same, whichever kind of send (through `self`, or with sendTo) found the budget spent. */
const anyChainDrops = (h: Harness) =>
  h.logs.filter(
    (log) =>
      log.message.includes("in a row; dropped") ||
      log.message.includes("sent itself too many events"),
  );

/**
 * Sends `event` to a new instance `name` of a harness whose chains hold 5 events, and waits for
 * its chain to be stopped: answers the fixture's count then, and how many chains were reported.
 */
async function stoppedChain(
  name: string,
  event: string,
): Promise<{ count: number; drops: number }> {
  const { h, at } = await start(5);
  try {
    await h.engine.createInstance({ ...at(name), authContext: {} });
    await h.engine.sendEvent({ ...at(name), event, authContext: {} });
    await until("the chain's drop", () => anyChainDrops(h).length > 0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { count: await countOf(h, at(name)), drops: anyChainDrops(h).length };
  } finally {
    await h.dispose();
  }
}

/** The path the runtime hands a sandbox's self-event notifications to, for forging them. */
const selfEventIntake = (h: Harness): SelfEventListener => {
  const intake = (h.engine as unknown as { sandboxEvents: { onSelfEvent: SelfEventListener } })
    .sandboxEvents;
  return (...event) => intake.onSelfEvent(...event);
};

const machineLog = (h: Harness, pattern: RegExp) =>
  h.logs.filter((line) => pattern.test(line.message));

test("an action's self.send reaches its instance after the step, at once or from a timer", async () => {
  const { h, at } = await start();
  try {
    const cases: Array<[string, string]> = [
      ["now", "go"],
      ["later", "later"],
    ];
    for (const [name, event] of cases) {
      await h.engine.createInstance({ ...at(name), authContext: {} });
      await h.engine.sendEvent({ ...at(name), event, authContext: {} });
      await until(`${name} to take NEXT`, async () => (await stateOf(h, at(name))) === "next");
    }
  } finally {
    await h.dispose();
  }
});

test("a step's actions send at most 1,000 events; the rest are dropped with one log line", async () => {
  const { h, at } = await start();
  try {
    await h.engine.createInstance({ ...at("flood"), authContext: {} });
    await h.engine.sendEvent({ ...at("flood"), event: "flood", authContext: {} });
    const countOf = async () =>
      ((await h.engine.inspectInstance(at("flood"))).context as { count: number }).count;
    await until("1,000 COUNTs", async () => (await countOf()) >= 1_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await countOf(), 1_000);
    assert.equal(machineLog(h, /self\.send from an action was dropped: .*at most 1000/).length, 1);
  } finally {
    await h.dispose();
  }
});

test("events an action sends faster than its instance takes them cost their chain nothing", async () => {
  // Room for 2 waiting events: of the flood's 1,000, nearly all are dropped as too fast, and
  // only those admitted are charged to the chain, far fewer than its 50.
  const { h, at } = await start(50, 2);
  try {
    await h.engine.createInstance({ ...at("flood"), authContext: {} });
    await h.engine.sendEvent({ ...at("flood"), event: "flood", authContext: {} });
    const tooFast = () =>
      h.logs.filter((log) => log.message.includes("faster than their instance"));
    await until("the flood's drop", () => tooFast().length > 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const applied = await countOf(h, at("flood"));
    assert.ok(applied >= 2 && applied < 50, String(applied));
    assert.equal(anyChainDrops(h).length, 0, "the chain's budget was not spent");
  } finally {
    await h.dispose();
  }
});

test("an action's self.send of no JSON event is dropped with one log line, and the rest go", async () => {
  const { h, at } = await start();
  try {
    await h.engine.createInstance({ ...at("odd"), authContext: {} });
    await h.engine.sendEvent({ ...at("odd"), event: "notJson", authContext: {} });
    // NEXT came first in each dropped send: had any gone, the instance would be in next.
    await until("MARK", async () => (await stateOf(h, at("odd"))) === "marked");
    assert.equal(machineLog(h, /self\.send from an action was dropped: .*not JSON/).length, 1);
  } finally {
    await h.dispose();
  }
});

test("a sandbox's self-event for an instance whose step it did not run, or of another org, changes nothing", async () => {
  const { h, at } = await start();
  try {
    const stepsOf = new Map<string, string>();
    h.runtime.onSelfEvent((_org, ref, stepId) => stepsOf.set(ref, stepId));
    const refOf = (name: string) => `${ORG}/${at(name).machineName}/${name}`;
    // "ran" took a NEXT from its step's action; "held" waits in sent, its step's PING ignored.
    await h.engine.createInstance({ ...at("ran"), authContext: {} });
    await h.engine.createInstance({ ...at("held"), authContext: {} });
    await h.engine.sendEvent({ ...at("ran"), event: "go", authContext: {} });
    await h.engine.sendEvent({ ...at("held"), event: "hold", authContext: {} });
    await until("both steps' sends", () => stepsOf.size === 2);
    await until("ran to take NEXT", async () => (await stateOf(h, at("ran"))) === "next");

    const intake = selfEventIntake(h);
    const forge = (orgId: string, ref: string, stepId: string) =>
      intake(orgId, ref, stepId, { type: "NEXT" }, 20);
    forge(ORG, refOf("held"), stepsOf.get(refOf("ran"))!); // another instance's step
    forge(ORG, refOf("held"), "step-unknown-1"); // a step that never ran
    forge(OTHER_ORG, refOf("held"), stepsOf.get(refOf("held"))!); // from another org's sandbox
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await stateOf(h, at("held")), "sent");

    // The same path does deliver what the instance's own step sends: the refusals above are real.
    forge(ORG, refOf("held"), stepsOf.get(refOf("held"))!);
    await until("held to take NEXT", async () => (await stateOf(h, at("held"))) === "next");
  } finally {
    await h.dispose();
  }
});

test("what a deleted instance's step sends does not reach an instance made again under its name", async () => {
  const { h, at } = await start();
  try {
    const stepsOf: string[] = [];
    h.runtime.onSelfEvent((_org, _ref, stepId) => stepsOf.push(stepId));
    const ref = `${ORG}/${at("again").machineName}/again`;
    await h.engine.createInstance({ ...at("again"), authContext: {} });
    await h.engine.sendEvent({ ...at("again"), event: "hold", authContext: {} });
    await until("the first instance's step to send", () => stepsOf.length === 1);
    await h.engine.deleteInstance(at("again"));
    await h.engine.createInstance({ ...at("again"), authContext: {} });
    await h.engine.sendEvent({ ...at("again"), event: "hold", authContext: {} });
    await until("the second instance's step to send", () => stepsOf.length === 2);

    // As a late send from a timer the deleted instance's action set would come.
    const intake = selfEventIntake(h);
    const send = (stepId: string) => intake(ORG, ref, stepId, { type: "NEXT" }, 20);
    send(stepsOf[0]!);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await stateOf(h, at("again")), "sent");
    send(stepsOf[1]!);
    await until("the new instance to take its own step's NEXT", async () => {
      return (await stateOf(h, at("again"))) === "next";
    });
  } finally {
    await h.dispose();
  }
});

test("a chain of steps each sending itself the next stops after maxSelfEvents, with one warning, and the instance goes on", async () => {
  const { h, at } = await start(5);
  try {
    await h.engine.createInstance({ ...at("loop"), authContext: {} });
    // The client's event counts once, then the 5 LOOPs the chain may send; the 6th is dropped.
    await h.engine.sendEvent({ ...at("loop"), event: "loop", authContext: {} });
    await until("the chain's drop", () => chainDrops(h).length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await countOf(h, at("loop")), 1 + 5);
    const [warning] = chainDrops(h);
    assert.equal(warning!.level, "warn");
    assert.equal(warning!.fields?.instance, `${ORG}/${at("loop").machineName}/loop`);
    assert.equal(warning!.fields?.limit, 5);

    // A client's event starts a chain of its own, as long.
    await h.engine.sendEvent({ ...at("loop"), event: "LOOP", authContext: {} });
    await until("the second chain's drop", () => chainDrops(h).length === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await countOf(h, at("loop")), 2 * (1 + 5));
    assert.equal(await stateOf(h, at("loop")), "looping");
  } finally {
    await h.dispose();
  }
});

test("a chain's one budget counts what actions send through self and what steps send themselves with sendTo", async () => {
  // Each LOOP an action sends is answered by a BOUNCE stepped at once, whose action sends the
  // next LOOP: the chain's 5 events are LOOP, BOUNCE, LOOP, BOUNCE, LOOP, and the last LOOP's
  // BOUNCE is dropped. Only BOUNCEs count (after the client's event's own step).
  assert.deepEqual(await stoppedChain("bounce", "bounce"), { count: 1 + 2, drops: 1 });
});

test("an outside event's step that sends itself events both ways starts one chain, not two", async () => {
  // The MIX's step sends a LOOP through self and a TICK with sendTo, and each LOOP and TICK
  // sends the next of its kind and counts: 5 events go in all, not 5 of each.
  assert.deepEqual(await stoppedChain("mix", "mix"), { count: 1 + 5, drops: 1 });
});

test("steps of a chain that each send themselves several events with sendTo do not multiply its budget", async () => {
  // Every LOOP's step sends the next LOOP through self and three TICKs with sendTo, and each
  // LOOP and TICK counts. Were the TICKs budgeted per step, apart from the chain, 5 LOOPs
  // would bring 15 TICKs; on the chain's one budget, 5 events go in all, of either kind.
  assert.deepEqual(await stoppedChain("fan", "fan"), { count: 1 + 5, drops: 1 });
});
