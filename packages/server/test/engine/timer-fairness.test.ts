// One org's backlog of due timers must not hold back another org's: the scheduler, saturated with
// one org's deliveries, takes another org's due timer at its very next claim.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import { silentLogger } from "../../src/engine/logger.js";
import {
  MAX_TIMER_DELIVERIES_IN_FLIGHT,
  TimerScheduler,
} from "../../src/engine/timer-scheduler.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import type { TimerRecord } from "../../src/store/store.js";
import { createInstance, instanceKey, seedMachine, T0, timer } from "../store/fixtures.js";

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(condition(), "the scheduler got there");
}

test("a busy org's backlog of due timers does not hold back another org's timer due now", async () => {
  const store = openSqliteStore({ path: ":memory:" });
  await store.migrate();
  const clock = new ManualClock(T0 + 10_000);
  const started: TimerRecord[] = [];
  const finish: Array<() => void> = [];
  const scheduler = new TimerScheduler({
    store,
    clock,
    logger: silentLogger,
    // Held until the test lets it end, as a slow machine step would be.
    deliver: (record) =>
      new Promise<void>((resolve) => {
        started.push(record);
        finish.push(resolve);
      }),
    retryDelayMs: 1000,
    maxAttempts: 5,
    leaseMs: 60_000,
  });
  try {
    await seedMachine(store, "org_busy");
    await seedMachine(store, "org_quiet");
    // 600 timers of one org, all overdue: far more than the scheduler delivers at once.
    for (let i = 0; i < 60; i += 1) {
      await createInstance(store, instanceKey("org_busy", `b${i}`), {
        timersToArm: Array.from({ length: 10 }, (_, n) => timer(`t${n}`, T0 + i * 10 + n)),
      });
    }
    scheduler.start();
    await until(() => started.length === MAX_TIMER_DELIVERIES_IN_FLIGHT);

    // Another org's timer comes due now, while the busy org's fill every delivery slot.
    await createInstance(store, instanceKey("org_quiet", "q"), {
      timersToArm: [timer("t", clock.now())],
    });
    scheduler.wake(clock.now());
    // One slot frees: the next claim, for one timer, is the quiet org's.
    finish.shift()?.();
    await until(() => started.length === MAX_TIMER_DELIVERIES_IN_FLIGHT + 1);
    assert.equal(started.at(-1)?.instance.orgId, "org_quiet");
  } finally {
    const stopping = scheduler.stop();
    // What was claimed before the stop is delivered (stop() waits for it); nothing more is.
    while (finish.length > 0) {
      for (const resolve of finish.splice(0)) resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await stopping;
    await store.close();
  }
});
