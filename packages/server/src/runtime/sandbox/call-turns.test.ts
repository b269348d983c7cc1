import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { CallTurns } from "./call-turns.js";

/** Records, by id, whether each call got its turn (true) or was handed back (false). */
function track(turns: CallTurns, ids: number[]): Map<number, boolean> {
  const outcomes = new Map<number, boolean>();
  for (const id of ids) void turns.next(id).then((run) => outcomes.set(id, run));
  return outcomes;
}

test("calls run one at a time, in arrival order, each once the one before ends", async () => {
  const turns = new CallTurns();
  const outcomes = track(turns, [1, 2, 3]);
  await nextTurn();
  assert.deepEqual([...outcomes], [[1, true]]);
  await nextTurn();
  assert.deepEqual([...outcomes], [[1, true]], "the next waits for the turn to end");
  turns.end();
  await nextTurn();
  turns.end();
  await nextTurn();
  assert.deepEqual(
    [...outcomes],
    [
      [1, true],
      [2, true],
      [3, true],
    ],
  );
});

test("a recall hands back the queued calls named, not the one under way nor those not named", async () => {
  const turns = new CallTurns();
  const outcomes = track(turns, [1, 2, 3, 4]);
  await nextTurn();
  assert.deepEqual(turns.recall([1, 2, 4, 99]), [2, 4]);
  await nextTurn();
  assert.equal(outcomes.get(2), false);
  assert.equal(outcomes.get(4), false);
  turns.end();
  await nextTurn();
  assert.deepEqual([...outcomes.entries()].sort(), [
    [1, true],
    [2, false],
    [3, true],
    [4, false],
  ]);
});

test("a recall hands back a call still waiting for its code, which then never runs", async () => {
  const turns = new CallTurns();
  let loaded!: (handler: string) => void;
  const loading = new Promise<string>((resolve) => (loaded = resolve));
  const waiting = turns.whileLoading(7, loading);
  const other = turns.whileLoading(8, loading);
  assert.deepEqual(turns.recall([7]), [7]);
  loaded("handler");
  assert.equal(await waiting, undefined);
  assert.equal(await other, "handler");
  assert.deepEqual(turns.recall([8]), [], "a call whose code came is no longer waiting for it");
});

test("the next call gets its turn after every queued one was handed back", async () => {
  const turns = new CallTurns();
  const outcomes = track(turns, [1]);
  assert.deepEqual(turns.recall([1]), [1]);
  await nextTurn();
  const later = track(turns, [2]);
  await nextTurn();
  assert.equal(outcomes.get(1), false);
  assert.equal(later.get(2), true);
});
