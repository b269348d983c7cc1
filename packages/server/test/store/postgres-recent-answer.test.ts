// What stands for a health check's own query on a busy PostgreSQL node (recent-answer.ts): only an
// answer the database gave, never a statement that failed or was never sent.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { RecentAnswer } from "../../src/store/postgres/recent-answer.js";

test("nothing answered yet: no recent answer", () => {
  assert.equal(new RecentAnswer().within(60_000), false);
});

test("an answered statement counts, for as long as asked", async () => {
  const answers = new RecentAnswer();
  assert.equal(await answers.noted(Promise.resolve(7)), 7);
  assert.equal(answers.within(60_000), true);
  await sleep(20);
  assert.equal(answers.within(5), false, "an answer 20 ms old is not within 5 ms");
});

test("a statement that failed is no answer, and its error reaches its caller", async () => {
  const answers = new RecentAnswer();
  await assert.rejects(answers.noted(Promise.reject(new Error("connection terminated"))), {
    message: "connection terminated",
  });
  assert.equal(answers.within(60_000), false);
});

test("next() resolves at the next answer, to whoever waits, and not before", async () => {
  const answers = new RecentAnswer();
  let heard = 0;
  const waiting = [answers.next(), answers.next()].map((p) => p.then(() => heard++));
  await sleep(10);
  assert.equal(heard, 0);
  answers.answered();
  await Promise.all(waiting);
  assert.equal(heard, 2);
  // A later wait is for a later answer, not the one already given.
  let later = false;
  void answers.next().then(() => (later = true));
  await sleep(10);
  assert.equal(later, false);
  answers.answered();
  await sleep(0);
  assert.equal(later, true);
});
