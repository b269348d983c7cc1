import assert from "node:assert/strict";
import { test } from "node:test";
import {
  armKey,
  cancelKey,
  keepSendKeys,
  MAX_REMEMBERED_SEND_IDS,
  SEND_KEYS_FIELD,
  sendKeysOf,
} from "./send-keys.js";

test("two arms under one id get keys of their own, and a cancel reaches the later", () => {
  const keys = sendKeysOf(undefined);
  const first = armKey(keys, "tick");
  const second = armKey(keys, "tick");
  assert.notEqual(first, second);
  assert.equal(cancelKey(keys, "tick"), second);
  // Reached once: a second cancel names the bare id, as a timer armed before numbering was kept.
  assert.equal(cancelKey(keys, "tick"), "tick");
});

test("the keys survive the snapshot, and a snapshot from before them has none", () => {
  const keys = sendKeysOf(undefined);
  const key = armKey(keys, "remind");
  const persisted: Record<string, unknown> = { value: "idle" };
  keepSendKeys(persisted, keys);
  const restored = sendKeysOf(JSON.parse(JSON.stringify(persisted)));
  assert.equal(cancelKey(restored, "remind"), key);
  assert.deepEqual(sendKeysOf({ value: "idle" }), { next: 0, latest: [] });
  assert.deepEqual(sendKeysOf({ [SEND_KEYS_FIELD]: { next: "x", latest: [[1, 2], "no"] } }), {
    next: 0,
    latest: [],
  });
});

test("a machine that makes up an id for every arm keeps a bounded snapshot", () => {
  const keys = sendKeysOf(undefined);
  const armed = Array.from({ length: MAX_REMEMBERED_SEND_IDS + 50 }, (_, i) =>
    armKey(keys, `remind-${i}`),
  );
  assert.equal(keys.latest.length, MAX_REMEMBERED_SEND_IDS);
  // The least recently armed are forgotten; the recent ones are still reached.
  assert.equal(cancelKey(keys, "remind-0"), "remind-0");
  const last = MAX_REMEMBERED_SEND_IDS + 49;
  assert.equal(cancelKey(keys, `remind-${last}`), armed[last]);
});

test("an id armed again is remembered as recent, not forgotten by its first arm's age", () => {
  const keys = sendKeysOf(undefined);
  armKey(keys, "kept");
  for (let i = 0; i < MAX_REMEMBERED_SEND_IDS - 1; i++) armKey(keys, `other-${i}`);
  const again = armKey(keys, "kept");
  armKey(keys, "one-more");
  assert.equal(cancelKey(keys, "kept"), again);
});
