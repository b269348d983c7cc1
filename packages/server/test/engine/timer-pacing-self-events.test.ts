// The events a machine sends itself after one of its timers count against its timer pacing
// (timer-pacing.ts), as the delivery itself does; the same events after a client's event, or after
// a service's result, do not.
// The fixture's self-sent events end in a state whose 100 ms timer shows the pacing: due on time
// while the instance is within its budget, later once it has spent it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
const instance = (instanceName: string) => ({ orgId: ORG, machineName: "echo", instanceName });

const bumps = async (h: Harness, instanceName: string) =>
  (
    (await h.engine.readInstance({ ...instance(instanceName), authContext: alice }))
      .publicContext as { bumps: number }
  ).bumps;

const send = (h: Harness, instanceName: string, event: string) =>
  h.engine.sendEvent({ ...instance(instanceName), event, authContext: alice });

// A burst of three, refilling one per 100 ms: the four events the fixture sends itself are over
// the burst on their own, and with the timer's delivery two over it.
async function started(): Promise<Harness> {
  const h = await startHarness({
    clock: new ManualClock(),
    timerPacing: { burst: 3, perSecond: 10 },
  });
  await h.deploy("echo-v5.js", "v5-import", "echo");
  return h;
}

test("events a machine sends itself after its timer count against its pacing", async () => {
  const h = await started();
  try {
    const clock = h.clock as ManualClock;
    await h.engine.createInstance({ ...instance("e1"), authContext: alice });
    assert.equal((await send(h, "e1", "wait")).state, "waiting");
    await h.engine.timersIdle();
    const { state } = await h.engine.readInstance({ ...instance("e1"), authContext: alice });
    assert.equal(state, "resting");
    assert.equal(await bumps(h, "e1"), 3, "the events it sent itself were all stepped");
    // Charged: the delivery and four events, five against a burst of three. A deficit of two
    // takes 300 ms to pay back, so the timer `rest` armed waits that long rather than 100 ms.
    assert.equal(await h.store.nextTimerDue(), clock.now() + 300);
  } finally {
    await h.dispose();
  }
});

/**
 * Sends `event` to a new instance and checks that the four events the machine then sends itself
 * were all stepped, over the burst were they charged, yet the timer keeps its 100 ms.
 */
async function checkNotPaced(instanceName: string, event: string): Promise<void> {
  const h = await started();
  try {
    const clock = h.clock as ManualClock;
    await h.engine.createInstance({ ...instance(instanceName), authContext: alice });
    // Answered once the steps it set off are committed (for "serve": once the service has ended).
    assert.equal((await send(h, instanceName, event)).state, "resting");
    assert.equal(await bumps(h, instanceName), 3, "the events it sent itself were all stepped");
    assert.equal(await h.store.nextTimerDue(), clock.now() + 100);
  } finally {
    await h.dispose();
  }
}

test("events a machine sends itself after a client's event are not paced", () =>
  checkNotPaced("e2", "echo"));

test("events a machine sends itself after a service's result are not paced", () =>
  checkNotPaced("e3", "serve"));
