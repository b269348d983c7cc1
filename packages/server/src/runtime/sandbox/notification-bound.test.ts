import assert from "node:assert/strict";
import { test } from "node:test";
import { STEP_LIMITS } from "../../engine/transition-commit.js";
import { boundedNotification, MAX_NOTIFICATION_CHARS } from "./notification-bound.js";

const serviceEvent = (event: object) =>
  JSON.stringify({
    type: "service-event",
    instanceRef: "org/m/i",
    serviceId: "big",
    runId: "step-1",
    event,
  });

test("a notification within the bound goes out as it is", () => {
  const json = serviceEvent({ type: "done", output: "x".repeat(1000) });
  assert.equal(boundedNotification(json), json);
  // Any event the server would store fits, with its envelope.
  const largest = serviceEvent({
    type: "done",
    output: "x".repeat(STEP_LIMITS.maxEventBytes - 40),
  });
  assert.ok(
    JSON.stringify({ output: "x".repeat(STEP_LIMITS.maxEventBytes - 40) }).length <
      STEP_LIMITS.maxEventBytes,
  );
  assert.equal(boundedNotification(largest), largest);
});

test("a larger service event goes out cut down to its type, with its size", () => {
  const json = serviceEvent({
    type: "xstate.done.actor.big",
    output: "x".repeat(MAX_NOTIFICATION_CHARS),
  });
  const cut = boundedNotification(json);
  assert.ok(cut !== undefined && cut.length < 1000);
  assert.deepEqual(JSON.parse(cut), {
    type: "service-event",
    instanceRef: "org/m/i",
    serviceId: "big",
    runId: "step-1",
    event: { type: "xstate.done.actor.big" },
    chars: json.length,
  });
});

test("a larger log line goes out cut short", () => {
  const json = JSON.stringify({ type: "log", level: "error", message: "y".repeat(5_000_000) });
  const cut = JSON.parse(boundedNotification(json)!) as { message: string; chars: number };
  assert.equal(cut.message.length, 8 * 1024);
  assert.equal(cut.chars, json.length);
});

test("a larger notification with no way to cut it does not go out", () => {
  const big = "z".repeat(MAX_NOTIFICATION_CHARS);
  assert.equal(boundedNotification(JSON.stringify({ tag: big })), undefined);
  assert.equal(boundedNotification(`{${big}`), undefined, "not JSON");
  assert.equal(boundedNotification(JSON.stringify([big])), undefined);
});
