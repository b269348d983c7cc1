// ExecutedSteps answers for a step only for the instance it ran for, and only for so long and so
// many steps: what lets an action's self.send through, and nothing a sandbox merely names.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ExecutedSteps, MAX_STEP_ID_CHARS } from "./executed-steps.js";

test("a step counts for the instance it was executed for, and no other", () => {
  const steps = new ExecutedSteps(() => 0);
  steps.record("step-1", "org/m/ann");
  assert.equal(steps.ranFor("step-1", "org/m/ann"), true);
  assert.equal(steps.ranFor("step-1", "org/m/bob"), false);
  assert.equal(steps.ranFor("step-2", "org/m/ann"), false);
});

test("a step counts for keepMs after its execute, then no more", () => {
  let now = 1_000;
  const steps = new ExecutedSteps(() => now, { keepMs: 100, maxSteps: 10 });
  steps.record("step-1", "org/m/ann");
  now += 60;
  steps.record("step-2", "org/m/ann");
  now += 40;
  assert.equal(steps.ranFor("step-1", "org/m/ann"), true, "exactly keepMs after");
  now += 1;
  assert.equal(steps.ranFor("step-1", "org/m/ann"), false);
  assert.equal(steps.ranFor("step-2", "org/m/ann"), true, "a later step still counts");
});

test("past maxSteps the oldest step is forgotten first", () => {
  const steps = new ExecutedSteps(() => 0, { keepMs: 1_000, maxSteps: 3 });
  for (const id of ["a", "b", "c", "d"]) steps.record(id, "org/m/ann");
  assert.deepEqual(
    ["a", "b", "c", "d"].map((id) => steps.ranFor(id, "org/m/ann")),
    [false, true, true, true],
  );
});

test("a step id longer than any sandbox makes (machine code's, of any size) is not kept", () => {
  const steps = new ExecutedSteps(() => 0);
  const longest = "s".repeat(MAX_STEP_ID_CHARS);
  const tooLong = "s".repeat(MAX_STEP_ID_CHARS + 1);
  steps.record(longest, "org/m/ann");
  steps.record(tooLong, "org/m/ann");
  steps.record({ megabytes: "x" } as unknown as string, "org/m/ann");
  assert.equal(steps.ranFor(longest, "org/m/ann"), true);
  assert.equal(steps.ranFor(tooLong, "org/m/ann"), false);
  assert.equal((steps as unknown as { steps: Map<unknown, unknown> }).steps.size, 1);
});
