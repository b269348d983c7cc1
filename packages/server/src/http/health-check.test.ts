import assert from "node:assert/strict";
import { test } from "node:test";
import { BackstateError } from "../errors.js";
import { HealthCheck } from "./health-check.js";

function counted(result: () => Promise<void>) {
  const calls = { count: 0 };
  return {
    calls,
    ping: () => {
      calls.count++;
      return result();
    },
  };
}

test("a database that answered counts as answering for a second; checks under way are shared", async () => {
  let time = 0;
  const { calls, ping } = counted(() => Promise.resolve());
  const health = new HealthCheck(ping, () => time);
  await Promise.all([health.check(), health.check(), health.check()]);
  assert.equal(calls.count, 1);
  time += 999;
  await health.check();
  assert.equal(calls.count, 1);
  time += 1;
  await health.check();
  assert.equal(calls.count, 2);
});

test("a database that does not answer fails every check until it does, none remembered", async () => {
  let up = false;
  const { calls, ping } = counted(() =>
    up ? Promise.resolve() : Promise.reject(new BackstateError("store-error", "refused")),
  );
  const health = new HealthCheck(ping, () => 0);
  await assert.rejects(health.check(), { code: "store-error" });
  await assert.rejects(health.check(), { code: "store-error" });
  assert.equal(calls.count, 2);
  up = true;
  await health.check();
});

test("a draining node says so without asking the database", async () => {
  const { calls, ping } = counted(() => Promise.resolve());
  const health = new HealthCheck(ping, () => 0);
  health.drain();
  await assert.rejects(health.check(), { code: "shutting-down" });
  assert.equal(calls.count, 0);
});
