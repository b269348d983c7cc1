import assert from "node:assert/strict";
import { test } from "node:test";
import type { Store } from "../store/store.js";
import type { Clock, TimerHandle } from "./clock.js";
import { silentLogger } from "./logger.js";
import { TimerScheduler } from "./timer-scheduler.js";

// Regression: a server opened and closed at once never exited, because the first poll was
// still waiting on the store when stop() came, and then armed a 60 s sleep.
test("stop() while a poll waits on the store leaves no sleep armed", async () => {
  let armed = 0;
  const clock: Clock = {
    now: () => 1_000,
    setTimeout: (): TimerHandle => {
      armed++;
      return { cancel: () => armed-- };
    },
  };
  let answerNextDue!: (value: number | undefined) => void;
  const store = {
    claimDueTimers: () => Promise.resolve([]),
    nextTimerDue: () => new Promise<number | undefined>((resolve) => (answerNextDue = resolve)),
  } as unknown as Store;
  const scheduler = new TimerScheduler({
    store,
    clock,
    logger: silentLogger,
    deliver: () => Promise.resolve(),
    retryDelayMs: 1000,
    maxAttempts: 5,
    leaseMs: 1000,
  });
  scheduler.start();
  await new Promise((resolve) => setImmediate(resolve));
  const stopped = scheduler.stop();
  answerNextDue(undefined);
  await stopped;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(armed, 0);
});
