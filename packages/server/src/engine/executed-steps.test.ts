// ExecutedSteps answers for a step only for the instance it ran for (by name and row id), only for
// so long and so many steps, and keeps no step id of machine code's choosing past a sane length:
// what lets an action's self.send through, and nothing a sandbox merely names.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ExecutedSteps, MAX_STEP_ID_CHARS } from "./executed-steps.js";

test("a step answers the row id of the instance it was executed for, and no other instance", () => {
  const steps = new ExecutedSteps(() => 0);
  steps.record("step-1", "org/m/ann", 7);
  assert.equal(steps.instanceIdFor("step-1", "org/m/ann"), 7);
  assert.equal(steps.instanceIdFor("step-1", "org/m/bob"), undefined);
  assert.equal(steps.instanceIdFor("step-2", "org/m/ann"), undefined);
});

test("a step counts for keepMs after its execute, then no more", () => {
  let now = 1_000;
  const steps = new ExecutedSteps(() => now, { keepMs: 100, maxSteps: 10 });
  steps.record("step-1", "org/m/ann", 1);
  now += 60;
  steps.record("step-2", "org/m/ann", 1);
  now += 40;
  assert.equal(steps.instanceIdFor("step-1", "org/m/ann"), 1, "exactly keepMs after");
  now += 1;
  assert.equal(steps.instanceIdFor("step-1", "org/m/ann"), undefined);
  assert.equal(steps.instanceIdFor("step-2", "org/m/ann"), 1, "a later step still counts");
});

test("past maxSteps the oldest step is forgotten first", () => {
  const steps = new ExecutedSteps(() => 0, { keepMs: 1_000, maxSteps: 3 });
  for (const id of ["a", "b", "c", "d"]) steps.record(id, "org/m/ann", 1);
  assert.deepEqual(
    ["a", "b", "c", "d"].map((id) => steps.instanceIdFor(id, "org/m/ann")),
    [undefined, 1, 1, 1],
  );
});

test("a step id longer than any sandbox makes (machine code's, of any size) is not kept", () => {
  const steps = new ExecutedSteps(() => 0);
  const longest = "s".repeat(MAX_STEP_ID_CHARS);
  const tooLong = "s".repeat(MAX_STEP_ID_CHARS + 1);
  steps.record(longest, "org/m/ann", 1);
  steps.record(tooLong, "org/m/ann", 1);
  steps.record({ megabytes: "x" } as unknown as string, "org/m/ann", 1);
  assert.equal(steps.instanceIdFor(longest, "org/m/ann"), 1);
  assert.equal(steps.instanceIdFor(tooLong, "org/m/ann"), undefined);
  assert.equal((steps as unknown as { steps: Map<unknown, unknown> }).steps.size, 1);
});
