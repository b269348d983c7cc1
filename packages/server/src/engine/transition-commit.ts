// Turning a step the sandbox computed into the commit that stores it: pure functions, so the
// single-event and the batch paths build commits the same way.
import { BackstateError, MachineCodeError, RejectedByMachineAuthorizerError } from "../errors.js";
import {
  MAX_SELF_SENDS_PER_STEP,
  MAX_STEP_ID_CHARS,
  type JsonObject,
  type MachineEvent,
  type MachineFailure,
  type Step,
  type StepResponse,
} from "../runtime/adapter-protocol.js";
import type { InstanceRecord, TransitionCommit } from "../store/store.js";
import { instanceRecord } from "../store/instance-record.js";
import { MAX_KEY_TEXT_BYTES, unstorableTextProblem } from "../store/stored-text.js";
import { utf8Length } from "../runtime/json-check.js";
import { cutMachineText, MAX_MACHINE_TEXT_CHARS } from "../runtime/machine-text.js";
import type { SelfSendChain } from "./executed-steps.js";
import { envelopeParts, serviceRunsAfter } from "./instance-state.js";
import { keepMachineJson } from "./machine-json.js";

/** Where an event comes from decides what is checked and what the commit also does. */
export type EventOrigin =
  | { kind: "external"; authContext: JsonObject }
  | { kind: "timer"; timerId: number; timerKey: string }
  /** final: false for an event a running service sent, which leaves it running and pending. */
  | { kind: "service"; serviceId: string; final?: boolean }
  /**
   * backstopKey: the timer that stands in for this event until it is committed (see below).
   * chain: the self-send chain of the action's send this event follows from, if one does (its
   * step carries it on, see executed-steps.ts).
   */
  | { kind: "self"; backstopKey?: string; chain?: SelfSendChain };

/** A commit before the step's own parts (snapshot, history row, timers) are added. */
export type CommitFields = Omit<
  TransitionCommit,
  "snapshot" | "transition" | "timersToArm" | "timersToCancel" | "timersToDetach"
>;

/**
 * An event a machine sends itself is stepped in memory right after the commit of the step that
 * sent it; a server that died in between lost it for good. So that commit also stores each one as
 * a timer, its backstop, due a while after (CommitLimits.backstopMs). The self-sent event's own
 * commit delivers it (the commit fails if it is gone), and a backstop still there when it is due
 * (its node died, or the event's commit failed on a store error) is delivered as a delayed event
 * is: either way, once. The delay is the time a live node has to step the event itself (the
 * engine's selfEventBackstopMs), so normally only a dead node's self-sent events are delivered by
 * their backstop; a live node that took longer loses the race to its backstop's delivery, and its
 * own commit of the event is refused.
 *
 * This is the backstop timer's key of self-sent event `index` of the step committed at `sequence`.
 */
export function selfEventBackstopKey(sequence: number, index: number): string {
  return `${BACKSTOP_KEY_PREFIX}${sequence}:${index}`;
}

const BACKSTOP_KEY_PREFIX = "backstate:self:";

/** Whether a timer is a self-sent event's backstop rather than a delayed event the machine armed. */
export function isSelfEventBackstopKey(key: string): boolean {
  return key.startsWith(BACKSTOP_KEY_PREFIX);
}

export type CommitLimits = {
  now: number;
  maxContextBytes: number;
  /** The earliest the timers this step arms may be due (see timer-pacing.ts); none if undefined. */
  timersNotBefore?: number | undefined;
  /** How long self-sent events' backstops wait (see selfEventBackstopKey). */
  backstopMs: number;
};

/** The stored snapshot, envelope included, may not exceed this (the context limit plus room). */
const MAX_SNAPSHOT_CHARS = 2_000_000;

/**
 * What one step may ask of the store and the node, whatever machine code returns: each is work on
 * the node's main thread and rows in the store, so a machine must not choose it without bound.
 * An event from a caller is bounded by the HTTP body (4 MiB), so only events the machine makes
 * (service results, delayed and self-sent events) can reach maxEventBytes.
 */
export const STEP_LIMITS = {
  /** Bytes of one event as UTF-8 JSON, in the history or in a timer. */
  maxEventBytes: 4 * 1024 * 1024,
  /** Bytes of all the events of the timers one step arms, as UTF-8 JSON. */
  maxTimerEventBytes: 4 * 1024 * 1024,
  /** Delayed events one step arms, and those it cancels or detaches from their send id. */
  maxTimersArmed: 1_000,
  maxTimersCancelled: 1_000,
  maxTimersDetached: 1_000,
  /**
   * Events one step sends itself (each is stored with its commit, as a backstop timer), and their
   * bytes as UTF-8 JSON in all.
   */
  maxSelfEventsSent: MAX_SELF_SENDS_PER_STEP,
  maxSelfEventBytes: 4 * 1024 * 1024,
  /** Services (invoked or spawned children) one step starts. */
  maxServicesStarted: 100,
  /** Characters of a machine's failure message or authorizer's reason that are kept. */
  maxMessageChars: MAX_MACHINE_TEXT_CHARS,
} as const;

const MACHINE_FAILURE_CODES: ReadonlySet<string> = new Set<MachineFailure["code"]>([
  "machine-error",
  "not-json-serializable",
  "context-too-large",
]);

/** The step, or the coded error its refusal or failure in the sandbox means. */
export function acceptStep(response: StepResponse): Step {
  switch (response.outcome) {
    case "denied":
      throw new RejectedByMachineAuthorizerError(
        `the machine's authorizer refused: ${cutMachineText(response.reason)}`,
      );
    case "failed": {
      // Written in the sandbox, where machine code runs: only the codes a machine can fail
      // with pass (any other would name no status), and the message must be text.
      const { code, message } = response.failure;
      throw new MachineCodeError(
        MACHINE_FAILURE_CODES.has(code) ? code : "machine-error",
        cutMachineText(typeof message === "string" ? message : "the machine failed"),
      );
    }
    case "step": {
      // The host keeps a step's id while its effects run (and its actions may send it events):
      // from the sandbox, it must be the short text the adapter makes.
      const { stepId } = response.step;
      if (typeof stepId !== "string" || stepId.length === 0 || stepId.length > MAX_STEP_ID_CHARS) {
        throw new MachineCodeError(
          "machine-error",
          "the sandbox answered a step without a valid id",
        );
      }
      return response.step;
    }
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
    ...(origin.kind === "self" && origin.backstopKey !== undefined
      ? { deliveredTimerKey: origin.backstopKey }
      : {}),
  };
}

/**
 * The whole commit for a step; throws when the step breaks a limit the engine enforces itself.
 * `write`: the commit's own random id, kept in its snapshot, for a commit that is tried again
 * after a store error (see SnapshotEnvelope.write).
 */
export function buildCommit(
  step: Step,
  event: MachineEvent,
  fields: CommitFields,
  limits: CommitLimits,
  previous: InstanceRecord | undefined,
  write?: string,
): TransitionCommit {
  checkStepCounts(step);
  checkTimerKeys(step);
  const runs = serviceRunsAfter(previous, step, fields.pendingServices);
  const { envelope: snapshot, machineJson } = envelopeParts(step, runs, write);
  if (snapshot.length > MAX_SNAPSHOT_CHARS) {
    throw new BackstateError("context-too-large", "the machine's snapshot is too large to store");
  }
  // The sandbox checks the context size too, but it runs the machine's code, which can make it
  // report any size: the context in the snapshot to be stored is measured here.
  const contextBytes = contextBytesOver(step, snapshot, limits.maxContextBytes);
  if (contextBytes !== undefined) {
    throw new BackstateError(
      "context-too-large",
      `the context would be ${contextBytes} bytes as JSON; the limit is ${limits.maxContextBytes}`,
    );
  }
  const eventJson = JSON.stringify(event);
  // Counted in bytes of UTF-8, as the limit is documented and as the store keeps the text: a
  // character count let 4 Mi characters of three-byte text (12 MiB) through.
  const eventBytes = utf8Length(eventJson);
  if (eventBytes > STEP_LIMITS.maxEventBytes) {
    throw new MachineCodeError("machine-error", eventTooLarge(event.type, eventBytes));
  }
  const earliest = limits.timersNotBefore ?? -Infinity;
  const timersToArm = step.timers.map((t) => ({
    key: t.key,
    dueAt: dueAtOf(t.delayMs, limits.now, earliest),
    event: JSON.stringify(t.event),
    ...(t.detached === true ? { detached: true as const } : {}),
  }));
  checkEventBytes(timersToArm, STEP_LIMITS.maxTimerEventBytes, "the delayed events this step arms");
  // Not counted against the machine's delayed events: they are the engine's, bounded on their own
  // (maxSelfEventsSent, maxSelfEventBytes).
  const backstops = step.selfEvents.map((selfEvent, index) => ({
    key: selfEventBackstopKey(fields.expectedSequence + 1, index),
    dueAt: dueAtOf(limits.backstopMs, limits.now, -Infinity),
    event: JSON.stringify(selfEvent),
  }));
  checkEventBytes(backstops, STEP_LIMITS.maxSelfEventBytes, "the events this step sends itself");
  // The fields are spread last: in V8 11 (Node 20) a spread that opens an object literal, with
  // new properties after it, costs about half a microsecond a property (a new map each time),
  // where this order costs next to nothing. CommitFields holds none of these names.
  const commit: TransitionCommit = {
    snapshot,
    transition: { event: eventJson, state: JSON.stringify(step.value) },
    timersToArm: [...timersToArm, ...backstops],
    timersToCancel: step.cancels,
    timersToDetach: step.detaches,
    ...fields,
  };
  // For the record the commit leaves (StepCommitter.finish), whose next step sends it as it is.
  keepMachineJson(commit, machineJson);
  return commit;
}

/** Refuses the step when the events of `timers` are over `limit` bytes of UTF-8 JSON in all. */
function checkEventBytes(
  timers: ReadonlyArray<{ event: string }>,
  limit: number,
  what: string,
): void {
  const bytes = timers.reduce((sum, timer) => sum + utf8Length(timer.event), 0);
  if (bytes > limit) {
    throw new MachineCodeError(
      "machine-error",
      `${what} are ${bytes} bytes as JSON; the limit is ${limit}`,
    );
  }
}

/**
 * The size of the step's context (`snapshot.context`, v4 and v5 alike) as UTF-8 JSON, measured as
 * the adapter measures it, if it is over `maxContextBytes`. The context's JSON is part of the
 * envelope's and a UTF-16 unit is at most 3 bytes of UTF-8, so a small envelope needs no second
 * serialization.
 */
function contextBytesOver(
  step: Step,
  envelope: string,
  maxContextBytes: number,
): number | undefined {
  if (envelope.length * 3 <= maxContextBytes) return undefined;
  const machine = step.snapshot as { context?: unknown } | null;
  const context = typeof machine === "object" && machine !== null ? machine.context : undefined;
  const bytes = utf8Length(JSON.stringify(context ?? {}));
  return bytes > maxContextBytes ? bytes : undefined;
}

/** Why an event of `size` bytes (or characters) as JSON is not stored: one wording for every path. */
export function eventTooLarge(
  type: string,
  size: number,
  unit: "bytes" | "characters" = "bytes",
): string {
  return `the event ${JSON.stringify(cutMachineText(type, 100))} is ${size} ${unit} as JSON; the limit is ${STEP_LIMITS.maxEventBytes} bytes`;
}

/**
 * When a timer armed at `now` with `delayMs` is due, as the stores keep it: whole epoch ms.
 * Delays run from the clock, not from `at`, which may sit a millisecond ahead to keep ts
 * increasing. A computed delay need not be whole (a jittered backoff): rounded up, so a timer
 * never fires early; a negative one is due at once, as setTimeout has it. One that is not a number
 * (only a forged answer has that) or too long to keep is the machine's error, not the store's.
 */
function dueAtOf(delayMs: unknown, now: number, earliest: number): number {
  if (typeof delayMs !== "number" || Number.isNaN(delayMs)) {
    throw new MachineCodeError("machine-error", "a delayed event's delay is not a number");
  }
  const dueAt = Math.ceil(Math.max(now + Math.max(0, delayMs), earliest));
  if (!Number.isSafeInteger(dueAt)) {
    throw new MachineCodeError("machine-error", `a delay of ${delayMs} ms is too long to keep`);
  }
  return dueAt;
}

/** How many timers and services a step may arm, cancel and start (STEP_LIMITS). */
function checkStepCounts(step: Step): void {
  const counts = [
    [step.timers.length, STEP_LIMITS.maxTimersArmed, "delayed events armed"],
    [step.cancels.length, STEP_LIMITS.maxTimersCancelled, "delayed events cancelled"],
    [step.detaches.length, STEP_LIMITS.maxTimersDetached, "delayed events detached"],
    [step.servicesStarted.length, STEP_LIMITS.maxServicesStarted, "services started"],
    [step.selfEvents.length, STEP_LIMITS.maxSelfEventsSent, "events sent to itself"],
  ] as const;
  for (const [count, limit, what] of counts) {
    if (count > limit) {
      throw new MachineCodeError(
        "machine-error",
        `${count} ${what} in one step; the limit is ${limit}`,
      );
    }
  }
}

/**
 * The ids of delayed events the machine arms or cancels are the timers' keys in the store, chosen
 * by machine code: refused as the machine's error when a store could not keep them as they are
 * (PostgreSQL would fail the commit as a storage error, SQLite would keep a NUL).
 */
function checkTimerKeys(step: Step): void {
  const keys = [...step.timers.map((timer) => timer.key), ...step.cancels, ...step.detaches];
  for (const key of keys) {
    const problem = unstorableTextProblem(key, MAX_KEY_TEXT_BYTES);
    if (problem !== undefined) {
      throw new MachineCodeError("machine-error", `a delayed event's id ${problem}`);
    }
  }
}

/** The record a successful commit will leave, so the next step of a batch can chain on it. */
export function projected(instance: InstanceRecord, commit: TransitionCommit): InstanceRecord {
  return instanceRecord({
    ...instance,
    snapshot: commit.snapshot,
    sequence: commit.expectedSequence + 1,
    pendingServices: commit.pendingServices,
    updatedAt: commit.at,
  });
}
