import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyExit } from "./sandbox-death.js";

// What V8 and the C++ runtime print when an allocation fails at the sandbox's data limit.
test("an abort at the data limit is a memory death, not a crash", () => {
  for (const stderr of [
    "FATAL ERROR: v8::ArrayBuffer::NewBackingStore Allocation failed - process out of memory",
    "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc",
  ]) {
    assert.equal(classifyExit(stderr, "signal SIGABRT").kind, "memory", stderr);
  }
  assert.equal(
    classifyExit(
      "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
      undefined,
    ).kind,
    "memory",
  );
  assert.deepEqual(classifyExit("Segmentation fault", "signal SIGSEGV"), {
    kind: "exited",
    detail: "signal SIGSEGV",
  });
});
