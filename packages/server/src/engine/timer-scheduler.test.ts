import assert from "node:assert/strict";
import { test } from "node:test";
import type { Store } from "../store/store.js";
import type { Clock, TimerHandle } from "./clock.js";
import { silentLogger } from "./logger.js";
import { MAX_TIMER_DELIVERIES_IN_FLIGHT, TimerScheduler } from "./timer-scheduler.js";

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

test("claims no more timers than it has room to deliver; the rest wait for room", async () => {
  const clock: Clock = { now: () => 1_000, setTimeout: () => ({ cancel: () => {} }) };
  let waiting = 1_000;
  let claimed = 0;
  let largestAsk = 0;
  const store = {
    claimDueTimers: (_now: number, limit: number) => {
      largestAsk = Math.max(largestAsk, limit);
      const count = Math.min(limit, waiting);
      waiting -= count;
      const timers = Array.from({ length: count }, () => ({ id: ++claimed, attempts: 0 }));
      return Promise.resolve(timers);
    },
    nextTimerDue: () => Promise.resolve(waiting > 0 ? 0 : undefined),
  } as unknown as Store;
  const held: Array<() => void> = [];
  const scheduler = new TimerScheduler({
    store,
    clock,
    logger: silentLogger,
    deliver: () => new Promise<void>((resolve) => held.push(resolve)),
    retryDelayMs: 1000,
    maxAttempts: 5,
    leaseMs: 1000,
  });
  scheduler.start();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(claimed, MAX_TIMER_DELIVERIES_IN_FLIGHT, "claimed only what it can deliver");
  assert.ok(largestAsk <= MAX_TIMER_DELIVERIES_IN_FLIGHT);
  // Ten deliveries end: ten more are claimed, no more.
  for (const resolve of held.splice(0, 10)) resolve();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(claimed, MAX_TIMER_DELIVERIES_IN_FLIGHT + 10);
  // Everything ends: the rest is claimed and delivered in turn.
  while (claimed < 1_000 || held.length > 0) {
    for (const resolve of held.splice(0)) resolve();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(waiting, 0);
  await scheduler.stop();
});
