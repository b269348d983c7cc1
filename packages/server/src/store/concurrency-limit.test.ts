import assert from "node:assert/strict";
import { test } from "node:test";
import { ConcurrencyLimit } from "./concurrency-limit.js";

/** A task that runs until `finish` is called, recording when it started. */
function gate(started: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    task: () => {
      started.push(name);
      return done.then(() => name);
    },
    finish: () => finish(),
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("runs at most `limit` tasks at once, the others in the order they came", async () => {
  const limit = new ConcurrencyLimit(2);
  const started: string[] = [];
  const gates = ["a", "b", "c", "d"].map((name) => gate(started, name));
  const results = gates.map((g) => limit.run(g.task));
  await turn();
  assert.deepEqual(started, ["a", "b"]);
  gates[1]!.finish();
  await turn();
  assert.deepEqual(started, ["a", "b", "c"]);
  gates[0]!.finish();
  await turn();
  assert.deepEqual(started, ["a", "b", "c", "d"]);
  gates[2]!.finish();
  gates[3]!.finish();
  assert.deepEqual(await Promise.all(results), ["a", "b", "c", "d"]);
});

test("a task that fails frees its place", async () => {
  const limit = new ConcurrencyLimit(1);
  await assert.rejects(
    limit.run(() => Promise.reject(new Error("no"))),
    /no/,
  );
  assert.equal(await limit.run(() => Promise.resolve("next")), "next");
});

test("a limit that is not a positive integer is a misuse", () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new ConcurrencyLimit(bad), TypeError);
  }
});
