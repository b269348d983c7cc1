import assert from "node:assert/strict";
import { test } from "node:test";
import type { Logger } from "../engine/logger.js";
import { BackstateError } from "../errors.js";
import { HealthCheck } from "./health-check.js";

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const none = () => {};
  return {
    warnings,
    debug: none,
    info: none,
    error: none,
    warn: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields)}`),
  };
}

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

test("an answer stands for a second; checks under way are shared", async () => {
  let time = 0;
  const { calls, ping } = counted(() => Promise.resolve());
  const health = new HealthCheck(ping, () => time, recordingLogger());
  await Promise.all([health.check(), health.check(), health.check()]);
  assert.equal(calls.count, 1);
  time += 999;
  await health.check();
  assert.equal(calls.count, 1);
  time += 1;
  await health.check();
  assert.equal(calls.count, 2);
});

test("a failure stands for a second too, tells the caller nothing of its cause, and is logged once a minute", async () => {
  let time = 0;
  let up = false;
  const { calls, ping } = counted(() =>
    up
      ? Promise.resolve()
      : Promise.reject(new BackstateError("store-error", "connect ECONNREFUSED 10.1.2.3:5432")),
  );
  const logger = recordingLogger();
  const health = new HealthCheck(ping, () => time, logger);
  for (let i = 0; i < 5; i++) {
    await assert.rejects(health.check(), (error: BackstateError) => {
      assert.equal(error.code, "store-error");
      assert.equal(error.message, "the database does not answer");
      return true;
    });
  }
  assert.equal(calls.count, 1, "one query for five checks within the second");
  time += 1_000;
  await assert.rejects(health.check(), { code: "store-error" });
  assert.equal(calls.count, 2);
  assert.equal(logger.warnings.length, 1, "logged once within the minute");
  assert.match(logger.warnings[0]!, /10\.1\.2\.3/, "the cause goes to the log");
  up = true;
  time += 1_000;
  await health.check();
});

test("a database that does not answer within 2 s fails the check, and is not asked again meanwhile", async () => {
  let time = 0;
  const { calls, ping } = counted(() => new Promise<void>(() => {}));
  const health = new HealthCheck(ping, () => time, recordingLogger());
  const started = performance.now();
  await assert.rejects(health.check(), { code: "store-error" });
  const waited = performance.now() - started;
  assert.ok(waited >= 1_900 && waited < 10_000, `answered after ${waited} ms`);
  time += 1_000;
  await assert.rejects(health.check(), { code: "store-error" });
  assert.equal(calls.count, 1, "the first query is still under way: not asked again");
});

test("an error of any kind counts as no answer (a closed store's TypeError too)", async () => {
  const health = new HealthCheck(
    () => Promise.reject(new TypeError("the store is closed")),
    () => 0,
    recordingLogger(),
  );
  await assert.rejects(health.check(), { code: "store-error" });
});

test("a draining node says so without asking the database", async () => {
  const { calls, ping } = counted(() => Promise.resolve());
  const health = new HealthCheck(ping, () => 0, recordingLogger());
  health.drain();
  await assert.rejects(health.check(), { code: "shutting-down" });
  assert.equal(calls.count, 0);
});

test("a node without its change-notice connection past the grace is not ready, without asking the database", async () => {
  let time = 0;
  let lostAt: number | undefined;
  const { calls, ping } = counted(() => Promise.resolve());
  const logger = recordingLogger();
  const health = new HealthCheck(
    ping,
    () => time,
    logger,
    () => lostAt,
  );
  await health.check();
  assert.equal(calls.count, 1);

  // A reconnect under way for a moment does not flap the node out of its balancer's pool.
  lostAt = time;
  time += 10_000;
  await health.check();
  assert.equal(calls.count, 2);

  time += 1;
  for (let i = 0; i < 3; i++) {
    await assert.rejects(health.check(), (error: BackstateError) => {
      assert.equal(error.code, "store-error");
      assert.equal(error.message, "this node does not hear the database's change notices");
      return true;
    });
  }
  assert.equal(calls.count, 2, "the database is not asked: its answer would change nothing");
  assert.equal(logger.warnings.length, 1, "logged once within the minute");
  assert.match(logger.warnings[0]!, /change-notice connection is down/);

  // Listening again: ready at once.
  lostAt = undefined;
  await health.check();
});
