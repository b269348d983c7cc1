// ExecutedSteps answers for a step only for the instance it ran for (by name and row id), only for
// so long and so many steps, and keeps no step id of machine code's choosing past a sane length:
// what lets an action's self.send through, and nothing a sandbox merely names. It keeps each
// step's self-send chain: carried on by the steps a send caused, started once for any other.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ExecutedSteps, MAX_STEP_ID_CHARS } from "./executed-steps.js";

const idOf = (steps: ExecutedSteps, stepId: string, ref: string) =>
  steps.sender(stepId, ref, 10)?.instanceId;

test("a step answers the row id of the instance it was executed for, and no other instance", () => {
  const steps = new ExecutedSteps(() => 0);
  steps.record("step-1", "org/m/ann", 7);
  assert.equal(idOf(steps, "step-1", "org/m/ann"), 7);
  assert.equal(idOf(steps, "step-1", "org/m/bob"), undefined);
  assert.equal(idOf(steps, "step-2", "org/m/ann"), undefined);
});

test("a step counts for keepMs after its execute, then no more", () => {
  let now = 1_000;
  const steps = new ExecutedSteps(() => now, { keepMs: 100, maxSteps: 10 });
  steps.record("step-1", "org/m/ann", 1);
  now += 60;
  steps.record("step-2", "org/m/ann", 1);
  now += 40;
  assert.equal(idOf(steps, "step-1", "org/m/ann"), 1, "exactly keepMs after");
  now += 1;
  assert.equal(idOf(steps, "step-1", "org/m/ann"), undefined);
  assert.equal(idOf(steps, "step-2", "org/m/ann"), 1, "a later step still counts");
});

test("past maxSteps the oldest step is forgotten first", () => {
  const steps = new ExecutedSteps(() => 0, { keepMs: 1_000, maxSteps: 3 });
  for (const id of ["a", "b", "c", "d"]) steps.record(id, "org/m/ann", 1);
  assert.deepEqual(
    ["a", "b", "c", "d"].map((id) => idOf(steps, id, "org/m/ann")),
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
  assert.equal(idOf(steps, longest, "org/m/ann"), 1);
  assert.equal(idOf(steps, tooLong, "org/m/ann"), undefined);
  assert.equal((steps as unknown as { steps: Map<unknown, unknown> }).steps.size, 1);
});

test("a step caused otherwise starts a chain once; a step a send caused carries its sender's on", () => {
  const steps = new ExecutedSteps(() => 0);
  steps.record("root", "org/m/ann", 1);
  const started = steps.sender("root", "org/m/ann", 5)!.chain;
  assert.deepEqual(started, { left: 5, warned: false });
  started.left--;
  // Sends from the same step later (a timer its action set) count on the same chain.
  assert.equal(steps.sender("root", "org/m/ann", 5)!.chain, started);
  steps.record("caused", "org/m/ann", 1, started);
  assert.equal(steps.sender("caused", "org/m/ann", 5)!.chain, started);
  // Another instance's step names no chain, and starts none for the step.
  assert.equal(steps.sender("root", "org/m/bob", 5), undefined);
});
