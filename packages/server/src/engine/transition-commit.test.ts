import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_STEP_ID_CHARS, type Step, type StepResponse } from "../runtime/adapter-protocol.js";
import type { InstanceRecord } from "../store/store.js";
import { instanceRecord } from "../store/instance-record.js";
import { keepMachineJson, keptMachineJson, machineJsonOf } from "./machine-json.js";
import { acceptStep, buildCommit, eventCommitFields, projected } from "./transition-commit.js";

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

test("a step's id must be the short text the adapter makes", () => {
  const stepWithId = (stepId: unknown) =>
    ({ outcome: "step", step: { stepId } }) as unknown as StepResponse;
  const longest = "s".repeat(MAX_STEP_ID_CHARS);
  assert.equal(acceptStep(stepWithId(longest)).stepId, longest);
  for (const stepId of ["s".repeat(MAX_STEP_ID_CHARS + 1), "", 42, undefined, { id: "s" }]) {
    assert.throws(() => acceptStep(stepWithId(stepId)), {
      name: "MachineCodeError",
      code: "machine-error",
    });
  }
});

const NOW = 1_700_000_000_000;
const instance = {
  orgId: "org_t",
  machineName: "m",
  instanceName: "i",
  id: 1,
  machineVersionId: "ver_1",
  snapshot: "{}",
  status: "running",
  sequence: 1,
  pendingServices: [],
  createdAt: NOW,
  updatedAt: NOW,
} as unknown as InstanceRecord;

/** A plain step (no effects), with `parts` in place of its defaults. */
function stepOf(parts: Record<string, unknown>): Step {
  return {
    stepId: "s",
    effectsPending: false,
    snapshot: { context: {} },
    value: "a",
    tags: [],
    done: false,
    contextBytes: 2,
    timers: [],
    cancels: [],
    detaches: [],
    servicesStarted: [],
    servicesStopped: [],
    selfEvents: [],
    ...parts,
  };
}

/** The commit of an external event's step on `instance`. */
function commitOf(step: Step) {
  const origin = { kind: "external", authContext: {} } as const;
  const fields = eventCommitFields(instance, step, origin, NOW);
  const limits = { now: NOW, maxContextBytes: 400_000, backstopMs: 30_000 };
  return buildCommit(step, { type: "go" }, fields, limits, instance);
}

function armed(delayMs: unknown): number | undefined {
  const step = stepOf({ timers: [{ key: "t", delayMs, event: { type: "later" } }] });
  return commitOf(step).timersToArm[0]?.dueAt;
}

test("a timer's due time is whole milliseconds, never early", () => {
  assert.equal(armed(1000), NOW + 1000);
  assert.equal(armed(250.2), NOW + 251);
  assert.equal(armed(-50), NOW, "a negative delay is due at once");
  assert.equal(armed(3e11), NOW + 3e11, "ten years is fine");
});

test("a delay that is not a number, or too long to keep, is the machine's error", () => {
  for (const delayMs of [Number.NaN, "1000", null, Infinity, 1e20]) {
    assert.throws(() => armed(delayMs), { code: "machine-error" }, String(delayMs));
  }
});

test("an event's 4 MiB limit is counted in bytes of UTF-8, as the context's is", () => {
  const step = {
    stepId: "s",
    effectsPending: false,
    snapshot: { context: {} },
    value: "a",
    tags: [],
    done: false,
    contextBytes: 2,
    timers: [{ key: "t", delayMs: 1000, event: { type: "later", pad: "€".repeat(1_500_000) } }],
    cancels: [],
    detaches: [],
    servicesStopped: [],
    servicesStarted: [],
    selfEvents: [{ type: "mine", pad: "€".repeat(1_500_000) }],
  } as unknown as Step;
  const origin = { kind: "external", authContext: {} } as const;
  const fields = eventCommitFields(instance, step, origin, NOW);
  const limits = { now: NOW, maxContextBytes: 400_000, backstopMs: 30_000 };
  // 1.5 million characters, 4.5 MB as UTF-8: over 4 MiB.
  const big = { type: "result", output: "€".repeat(1_500_000) };
  const bare = { ...step, timers: [], selfEvents: [] } as unknown as Step;
  assert.throws(() => buildCommit(bare, big, fields, limits, instance), { code: "machine-error" });
  const timerOnly = { ...step, selfEvents: [] } as unknown as Step;
  assert.throws(() => buildCommit(timerOnly, { type: "go" }, fields, limits, instance), {
    code: "machine-error",
  });
  const selfOnly = { ...step, timers: [] } as unknown as Step;
  assert.throws(() => buildCommit(selfOnly, { type: "go" }, fields, limits, instance), {
    code: "machine-error",
  });
});

test("a commit keeps the machine JSON its envelope opens with, for the record it leaves", () => {
  const step = stepOf({ snapshot: { value: "a", context: { note: '","view":{' } } });
  const commit = commitOf(step);
  const kept = keptMachineJson(commit);
  assert.equal(kept, JSON.stringify(step.snapshot));
  // The record that commit leaves sends the kept text; a copy of it (not the record the commit
  // left) reads the same text out of the envelope.
  const left = projected(instance, commit);
  keepMachineJson(left, kept);
  assert.equal(machineJsonOf(left), kept);
  const copy = instanceRecord({ ...left });
  assert.equal(keptMachineJson(copy), undefined);
  assert.equal(machineJsonOf(copy), kept);
});
