// An instance's own timers cannot drive it without bound: a delayed event that arms the next one
// due at once is paced (timer-pacing.ts) once its burst is spent; slower timers keep their times.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
const at = { orgId: ORG, machineName: "spinner", instanceName: "s1" };

const turns = async (h: Harness) =>
  ((await h.engine.readInstance({ ...at, authContext: alice })).publicContext as { turns: number })
    .turns;

const send = (h: Harness, event: string) =>
  h.engine.sendEvent({ ...at, event, authContext: alice });

async function started(options: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness({ clock: new ManualClock(), ...options });
  await h.deploy("spinner-v5.js", "v5-import", "spinner");
  await h.engine.createInstance({ ...at, authContext: alice });
  return h;
}

// Unpaced, the loop never lets the timers go idle at a standing clock: the timeout fails it.
test("a timer loop with no delay is held to the pacing rate", { timeout: 60_000 }, async () => {
  const h = await started({ timerPacing: { burst: 10, perSecond: 5 } });
  try {
    const clock = h.clock as ManualClock;
    const start = clock.now();
    assert.equal((await send(h, "spin")).state, "spinning");
    await h.engine.timersIdle();
    assert.equal(await turns(h), 10, "the burst runs at once");
    assert.equal(await h.store.nextTimerDue(), start + 200, "then one per 200 ms");

    clock.advance(1_000);
    await h.engine.timersIdle();
    assert.equal(await turns(h), 15, "a second refills five");

    // Events from outside are not paced, and leaving the state cancels the loop's timer.
    assert.equal((await send(h, "stop")).state, "idle");
    assert.equal(await h.store.nextTimerDue(), undefined);
    const history = await h.store.listTransitions(at, { limit: 100 });
    assert.equal(history.length, 1 + 1 + 15 + 1, "init, spin, 15 turns, stop");
  } finally {
    await h.dispose();
  }
});

test("timers slower than the pacing rate keep their times", { timeout: 60_000 }, async () => {
  const h = await started({});
  try {
    const clock = h.clock as ManualClock;
    assert.equal((await send(h, "tick")).state, "ticking");
    // 300 ticks every 100 ms: three times the default burst, at half the default rate.
    for (let i = 1; i <= 300; i++) {
      clock.advance(100);
      await h.engine.timersIdle();
    }
    assert.equal(await turns(h), 300);
    assert.equal(await h.store.nextTimerDue(), clock.now() + 100);
  } finally {
    await h.dispose();
  }
});
