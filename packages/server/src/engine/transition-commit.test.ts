import assert from "node:assert/strict";
import { test } from "node:test";
import type { StepResponse } from "../runtime/adapter-protocol.js";
import { acceptStep } from "./transition-commit.js";

// The answer comes from the sandbox, where machine code runs, so it may be anything.
const forged = (failure: unknown) => ({ outcome: "failed", failure }) as unknown as StepResponse;

test("a failure's code passes only if a machine can fail with it", () => {
  assert.throws(() => acceptStep(forged({ code: "context-too-large", message: "big" })), {
    code: "context-too-large",
    message: "big",
  });
  for (const code of ["toString", "store-error", "missing-scope", 42]) {
    assert.throws(() => acceptStep(forged({ code, message: "m" })), {
      name: "MachineCodeError",
      code: "machine-error",
    });
  }
});

test("a failure's message must be text", () => {
  assert.throws(() => acceptStep(forged({ code: "machine-error", message: { toString: 1 } })), {
    code: "machine-error",
    message: "the machine failed",
  });
});
