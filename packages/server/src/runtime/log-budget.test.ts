import assert from "node:assert/strict";
import { test } from "node:test";
import { KeyedLogBudgets, LogBudget } from "./log-budget.js";

test("a burst goes through, then a steady rate; the refused lines are counted once", () => {
  let now = 1_000;
  const budget = new LogBudget({ perSecond: 10, burst: 5, now: () => now });
  const admitted = Array.from({ length: 8 }, () => budget.admit());
  assert.deepEqual(admitted, [0, 0, 0, 0, 0, undefined, undefined, undefined]);
  now += 100; // a tenth of a second earns one line, which tells the three dropped before it
  assert.equal(budget.admit(), 3);
  assert.equal(budget.admit(), undefined);
  now += 60_000; // a long quiet spell earns the burst back, no more
  const afterQuiet = Array.from({ length: 7 }, () => budget.admit());
  assert.deepEqual(afterQuiet, [1, 0, 0, 0, 0, undefined, undefined]);
});

test("keyed budgets forget the keys whose budget is back to full, once past the number kept", () => {
  let now = 0;
  const budgets = new KeyedLogBudgets({ perSecond: 10, burst: 2, now: () => now }, 3);
  budgets.of("quiet").admit();
  for (let i = 0; i < 3; i++) budgets.of("flooding").admit(); // one dropped, not yet told
  budgets.of("third").admit();
  assert.equal(budgets.size, 3);
  now += 50; // half a line earned back: no budget is full yet
  budgets.of("fourth");
  assert.equal(budgets.size, 4, "none was full");
  now += 1_000; // all refilled, the one with a drop untold too: past the number kept, all go
  budgets.of("fifth");
  assert.equal(budgets.size, 1, "only the new one is left");
});

test("under the number kept, no budget is forgotten", () => {
  let now = 0;
  const budgets = new KeyedLogBudgets({ perSecond: 10, burst: 1, now: () => now }, 3);
  const first = budgets.of("a");
  budgets.of("b");
  now += 1_000;
  budgets.of("c");
  assert.equal(budgets.of("a"), first);
  assert.equal(budgets.size, 3);
});
