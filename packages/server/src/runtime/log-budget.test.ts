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

test("drops no line let through tells are reported by the budget itself, once", async () => {
  let now = 0;
  const reports: number[] = [];
  const budget = new LogBudget({
    perSecond: 10,
    burst: 1,
    now: () => now,
    reportUntold: (dropped) => reports.push(dropped),
    untoldAfterMs: 5,
  });
  assert.deepEqual([budget.admit(), budget.admit(), budget.admit()], [0, undefined, undefined]);
  // Nothing follows: the report tells the two.
  await waitFor(() => reports.length > 0);
  assert.deepEqual(reports, [2]);
  // Drops a line let through tells first are not reported again: after that line, only the one
  // dropped later is (whichever report tells it).
  now += 1_000;
  assert.deepEqual([budget.admit(), budget.admit()], [0, undefined]);
  now += 1_000;
  assert.equal(budget.admit(), 1);
  assert.equal(budget.admit(), undefined);
  await waitFor(() => reports.length > 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(reports, [2, 1]);
});

test("keyed budgets report each key's untold drops under its key", async () => {
  const reports: Array<[string, number]> = [];
  const budgets = new KeyedLogBudgets({ perSecond: 0, burst: 1, untoldAfterMs: 5 }, 10, (key, n) =>
    reports.push([key, n]),
  );
  for (const key of ["a", "b", "a"]) budgets.of(key).admit();
  budgets.of("a").admit();
  await waitFor(() => reports.length > 0);
  assert.deepEqual(reports, [["a", 2]]);
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
