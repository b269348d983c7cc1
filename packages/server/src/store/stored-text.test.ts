import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_KEY_TEXT_BYTES, unstorableTextProblem } from "./stored-text.js";

test("text with U+0000 or a lone surrogate cannot be stored", () => {
  for (const text of [
    "\u0000",
    "a\u0000b",
    "\ud800",
    "x\udfff",
    "\udc00\ud800",
    "🙂".slice(0, 1),
  ]) {
    assert.notEqual(unstorableTextProblem(text), undefined, JSON.stringify(text));
  }
  assert.match(unstorableTextProblem("a\u0000")!, /U\+0000/);
  assert.match(unstorableTextProblem("a\ud800")!, /lone surrogate/);
});

test("any other Unicode can, whatever its script, pairs or controls", () => {
  for (const text of [
    "",
    "plain",
    "clé 名前 🙂 👩‍👩‍👧‍👦",
    "\u0001\t\n\u007f",
    "\u202e\ufeff\uffff",
    "e\u0301",
  ]) {
    assert.equal(unstorableTextProblem(text), undefined, JSON.stringify(text));
  }
});

test("a byte bound counts UTF-8 bytes, not characters", () => {
  assert.equal(MAX_KEY_TEXT_BYTES, 1024);
  assert.equal(unstorableTextProblem("a".repeat(1024), 1024), undefined);
  assert.equal(unstorableTextProblem("é".repeat(512), 1024), undefined);
  assert.match(unstorableTextProblem("é".repeat(513), 1024)!, /at most 1024 bytes/);
  assert.match(unstorableTextProblem("漢".repeat(342), 1024)!, /at most 1024 bytes/);
  assert.equal(unstorableTextProblem("🙂".repeat(256), 1024), undefined);
  assert.equal(unstorableTextProblem("漢".repeat(342)), undefined, "no bound unless asked");
});
