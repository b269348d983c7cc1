import assert from "node:assert/strict";
import { test } from "node:test";
import { LogBudget } from "./log-budget.js";

test("a burst goes through, then a steady rate; the refused lines are counted once", () => {
  let now = 1_000;
  const budget = new LogBudget({ perSecond: 10, burst: 5, now: () => now });
  const taken = Array.from({ length: 8 }, () => budget.take());
  assert.deepEqual(taken, [true, true, true, true, true, false, false, false]);
  assert.equal(budget.takeDropped(), 3);
  assert.equal(budget.takeDropped(), 0);
  now += 100; // a tenth of a second earns one line
  assert.equal(budget.take(), true);
  assert.equal(budget.take(), false);
  now += 60_000; // a long quiet spell earns the burst back, no more
  assert.equal(Array.from({ length: 7 }, () => budget.take()).filter(Boolean).length, 5);
});
