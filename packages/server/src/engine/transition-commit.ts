// Turning a step the sandbox computed into the commit that stores it: pure functions, so the
// single-event and the batch paths build commits the same way.
import { BackstateError, MachineCodeError, RejectedByMachineAuthorizerError } from "../errors.js";
import type { JsonObject, MachineEvent, Step, StepResponse } from "../runtime/adapter-protocol.js";
import type { InstanceRecord, TransitionCommit } from "../store/store.js";
import { MAX_KEY_TEXT_BYTES, unstorableTextProblem } from "../store/stored-text.js";
import { envelopeOf } from "./instance-state.js";

/** Where an event comes from decides what is checked and what the commit also does. */
export type EventOrigin =
  | { kind: "external"; authContext: JsonObject }
  | { kind: "timer"; timerId: number }
  /** final: false for an event a running service sent, which leaves it running and pending. */
  | { kind: "service"; serviceId: string; final?: boolean }
  | { kind: "self" };

/** A commit before the step's own parts (snapshot, history row, timers) are added. */
export type CommitFields = Omit<
  TransitionCommit,
  "snapshot" | "transition" | "timersToArm" | "timersToCancel"
>;

export type CommitLimits = { now: number; maxContextBytes: number };

/** The stored snapshot, envelope included, may not exceed this (the context limit plus room). */
const MAX_SNAPSHOT_CHARS = 2_000_000;

/** The step, or the coded error its refusal or failure in the sandbox means. */
export function acceptStep(response: StepResponse): Step {
  switch (response.outcome) {
    case "denied":
      throw new RejectedByMachineAuthorizerError(
        `the machine's authorizer refused: ${response.reason}`,
      );
    case "failed":
      throw new MachineCodeError(response.failure.code, response.failure.message);
    case "step":
      return response.step;
  }
}

/** What a step changes on an existing instance: its sequence, pending services, time, timer. */
export function eventCommitFields(
  instance: InstanceRecord,
  step: Step,
  origin: EventOrigin,
  now: number,
): CommitFields {
  const pending = new Set(instance.pendingServices);
  if (origin.kind === "service" && origin.final !== false) pending.delete(origin.serviceId);
  for (const id of step.servicesStopped) pending.delete(id);
  for (const id of step.servicesStarted) pending.add(id);
  return {
    kind: "event",
    instance: {
      orgId: instance.orgId,
      machineName: instance.machineName,
      instanceName: instance.instanceName,
    },
    instanceId: instance.id,
    machineVersionId: instance.machineVersionId,
    expectedSequence: instance.sequence,
    expectedPendingServices: instance.pendingServices,
    pendingServices: [...pending],
    // ts strictly increases per instance, even when two commits share a millisecond.
    at: Math.max(now, instance.updatedAt + 1),
    ...(origin.kind === "timer" ? { deliveredTimerId: origin.timerId } : {}),
  };
}

/** The whole commit for a step; throws when the step breaks a limit the engine enforces itself. */
export function buildCommit(
  step: Step,
  event: MachineEvent,
  fields: CommitFields,
  limits: CommitLimits,
): TransitionCommit {
  // The sandbox checks the context size too, but it runs the machine's code: trust, verify.
  if (step.contextBytes > limits.maxContextBytes) {
    throw new BackstateError(
      "context-too-large",
      `the context would be ${step.contextBytes} bytes as JSON; the limit is ${limits.maxContextBytes}`,
    );
  }
  checkTimerKeys(step);
  const snapshot = envelopeOf(step);
  if (snapshot.length > MAX_SNAPSHOT_CHARS) {
    throw new BackstateError("context-too-large", "the machine's snapshot is too large to store");
  }
  return {
    ...fields,
    snapshot,
    transition: { event: JSON.stringify(event), state: JSON.stringify(step.value) },
    // Delays run from the clock, not from `at`, which may sit a millisecond ahead to keep ts increasing.
    timersToArm: step.timers.map((t) => ({
      key: t.key,
      dueAt: limits.now + t.delayMs,
      event: JSON.stringify(t.event),
    })),
    timersToCancel: step.cancels,
  };
}

/**
 * The ids of delayed events the machine arms or cancels are the timers' keys in the store, chosen
 * by machine code: refused as the machine's error when a store could not keep them as they are
 * (PostgreSQL would fail the commit as a storage error, SQLite would keep a NUL).
 */
function checkTimerKeys(step: Step): void {
  for (const key of [...step.timers.map((timer) => timer.key), ...step.cancels]) {
    const problem = unstorableTextProblem(key, MAX_KEY_TEXT_BYTES);
    if (problem !== undefined) {
      throw new MachineCodeError("machine-error", `a delayed event's id ${problem}`);
    }
  }
}

/** The record a successful commit will leave, so the next step of a batch can chain on it. */
export function projected(instance: InstanceRecord, commit: TransitionCommit): InstanceRecord {
  return {
    ...instance,
    snapshot: commit.snapshot,
    sequence: commit.expectedSequence + 1,
    pendingServices: commit.pendingServices,
    updatedAt: commit.at,
  };
}
