import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDurationSeconds } from "./duration.js";

test("reads every unit @statebacked/token accepted", () => {
  assert.equal(parseDurationSeconds("30s"), 30);
  assert.equal(parseDurationSeconds("30m"), 1800);
  assert.equal(parseDurationSeconds("2 hours"), 7200);
  assert.equal(parseDurationSeconds("7d"), 604_800);
  assert.equal(parseDurationSeconds("1w"), 604_800);
  assert.equal(parseDurationSeconds("1y"), 31_557_600);
  assert.equal(parseDurationSeconds("1.5h"), 5400);
  assert.equal(parseDurationSeconds("10 MINS"), 600);
});

test("refuses what it cannot read with a TypeError", () => {
  for (const bad of ["", "7", "d", "7 days ago", "-1d", "7fortnights", "1e3s", " 7d", "7d "]) {
    assert.throws(() => parseDurationSeconds(bad), TypeError, bad);
  }
});
