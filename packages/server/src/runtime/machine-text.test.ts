import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_MACHINE_TEXT_CHARS, cutMachineText } from "./machine-text.js";

test("a line longer than the limit is cut, and says how much was cut", () => {
  assert.equal(cutMachineText("short"), "short");
  const cut = cutMachineText("x".repeat(MAX_MACHINE_TEXT_CHARS + 10));
  assert.ok(cut.startsWith("x".repeat(MAX_MACHINE_TEXT_CHARS)));
  assert.ok(cut.endsWith("… (10 more characters)"));
});
