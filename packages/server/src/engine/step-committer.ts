// The heart of the path of one event: ask the sandbox for the step, commit it, and only then let
// its effects run. A step that fails any check is discarded in the sandbox and changes nothing.
import { randomUUID } from "node:crypto";
import { BackstateError } from "../errors.js";
import type {
  JsonObject,
  MachineEvent,
  SendBatchResponse,
  Step,
  StepResponse,
} from "../runtime/adapter-protocol.js";
import type { MachineRuntime, VersionRef } from "../runtime/machine-runtime.js";
import { instanceRecord } from "../store/instance-record.js";
import type {
  CommitResult,
  InstanceKey,
  InstanceRecord,
  Store,
  TransitionCommit,
} from "../store/store.js";
import type { ActivityTracker } from "./activity.js";
import type { Clock } from "./clock.js";
import type { ExecutedSteps, SelfSendChain } from "./executed-steps.js";
import type { InstanceCache } from "./instance-cache.js";
import { stateOf, viewOf, type InstanceState } from "./instance-state.js";
import { keepMachineJson, keptMachineJson, machineJsonOf } from "./machine-json.js";
import type { Logger } from "./logger.js";
import {
  MAX_PRECHECKED_READERS,
  readDecisions,
  type ReadAudience,
  type ReadDecisions,
  type Reader,
} from "./read-audience.js";
import {
  commitRetryingStoreErrors,
  loggingRetries,
  retryingStoreErrors,
} from "./result-commit-retries.js";
import {
  acceptStep,
  buildCommit,
  eventCommitFields,
  isSelfEventBackstopKey,
  projected,
  type CommitFields,
  type CommitLimits,
  type EventOrigin,
} from "./transition-commit.js";

export type { EventOrigin } from "./transition-commit.js";

export type Committed = { instance: InstanceRecord; state: InstanceState; step: Step };

/** What became of each event of a batch (see transitionBatch). */
export type BatchOutcome = {
  outcomes: Array<Committed | Error>;
  /** How many events the batch processed: the first `processed` outcomes. */
  processed: number;
  /**
   * The event whose commit was tried first (-1: none was, every step was refused before its
   * commit). Each one before it was refused on the record the batch started from.
   */
  firstCommit: number;
};

export type CommitterDeps = {
  store: Store;
  runtime: MachineRuntime;
  activity: ActivityTracker;
  clock: Clock;
  logger: Logger;
  maxContextBytes: number;
  /** Remembers what each commit left, for the instance's next write; forgets it when one fails. */
  cache: InstanceCache;
  /** Told the earliest due time of timers a commit armed. */
  onTimersArmed: (dueAt: number) => void;
  /**
   * Told every committed transition, right after the commit (before its effects run), with
   * allowRead's answers on its state for the readers `audience` named when it was requested.
   */
  onCommitted: (
    instance: InstanceRecord,
    state: InstanceState,
    reads: ReadDecisions | undefined,
  ) => void;
  /** Who watches an instance: asked about with each step (see read-audience.ts). */
  audience: ReadAudience;
  /** Leases an instance before a commit whose step starts services (see service-leases.ts). */
  leaseServices: (key: InstanceKey) => Promise<() => void>;
  /** The earliest the instance's new timers may be due, if its timers are paced (timer-pacing.ts). */
  timersNotBefore: (key: InstanceKey, now: number) => number | undefined;
  /** How long the backstops of self-sent events wait (see selfEventBackstopKey). */
  selfEventBackstopMs: number;
  /** The waits before each further try of a service result's commit (result-commit-retries.ts). */
  resultRetryDelaysMs: readonly number[];
  /** Told of each step executed, whose actions may send their instance events (executed-steps.ts). */
  executedSteps: ExecutedSteps;
};

export function instanceRefOf(key: InstanceKey): string {
  return `${key.orgId}/${key.machineName}/${key.instanceName}`;
}

/** The key a ref names (names cannot contain "/"); a part a malformed ref lacks is "". */
export function instanceKeyOfRef(ref: string): InstanceKey {
  const [orgId = "", machineName = "", instanceName = ""] = ref.split("/");
  return { orgId, machineName, instanceName };
}

export function versionOf(key: InstanceKey, versionId: string): VersionRef {
  return { orgId: key.orgId, machineName: key.machineName, versionId };
}

export class StepCommitter {
  /**
   * Uses of each instance's sandbox process in flight: from a step's request to its commit, and
   * from a step's execution to its answer. While any is in flight the instance stays pinned to
   * its process, so `execute` reaches the sandbox that holds the step.
   */
  private readonly pins = new Map<string, number>();
  /**
   * Steps whose effects wait in their sandbox for the commit, by instance ref and step id: the
   * release of each one's hold on its process (see SandboxPool.holdStep), called once it has been
   * executed or discarded.
   */
  private readonly heldSteps = new Map<string, () => void>();

  constructor(private readonly deps: CommitterDeps) {}

  private limits(key: InstanceKey): CommitLimits {
    const now = this.deps.clock.now();
    return {
      now,
      maxContextBytes: this.deps.maxContextBytes,
      timersNotBefore: this.deps.timersNotBefore(key, now),
      backstopMs: this.deps.selfEventBackstopMs,
    };
  }

  /**
   * Unpins the instance from its sandbox process when nothing of it lives there: no use in
   * flight and no running service. Its next call may then go to any process of the org.
   */
  releaseIfIdle(orgId: string, ref: string): void {
    if (!this.pins.has(ref) && this.deps.activity.running(ref).length === 0) {
      this.deps.runtime.release(orgId, ref);
    }
  }

  private async pinned<T>(orgId: string, ref: string, use: () => Promise<T>): Promise<T> {
    this.pins.set(ref, (this.pins.get(ref) ?? 0) + 1);
    try {
      return await use();
    } finally {
      const left = (this.pins.get(ref) ?? 1) - 1;
      if (left > 0) this.pins.set(ref, left);
      else this.pins.delete(ref);
      this.releaseIfIdle(orgId, ref);
    }
  }

  /** Creates the instance: the initial step, committed as the instance's first transition. */
  async create(
    key: InstanceKey,
    versionId: string,
    context: JsonObject,
    authContext: JsonObject,
  ): Promise<Committed> {
    const ref = instanceRefOf(key);
    return this.pinned(key.orgId, ref, () =>
      this.createPinned(key, versionId, context, authContext, ref),
    );
  }

  private async createPinned(
    key: InstanceKey,
    versionId: string,
    context: JsonObject,
    authContext: JsonObject,
    ref: string,
  ): Promise<Committed> {
    const version = versionOf(key, versionId);
    const response = await this.deps.runtime.create(
      version,
      {
        instanceName: key.instanceName,
        context,
        authContext,
        maxContextBytes: this.deps.maxContextBytes,
      },
      ref,
    );
    const step = acceptStep(response);
    this.hold(key.orgId, ref, step);
    const at = this.deps.clock.now();
    return this.commit(
      version,
      step,
      { type: "xstate.init", context },
      {
        kind: "create",
        instance: key,
        machineVersionId: versionId,
        expectedSequence: 0,
        pendingServices: step.servicesStarted,
        at,
      },
      undefined,
    );
  }

  /** Processes one event on a loaded instance (the caller holds the instance's mailbox). */
  async transition(
    instance: InstanceRecord,
    event: MachineEvent,
    origin: EventOrigin,
  ): Promise<Committed> {
    const ref = instanceRefOf(instance);
    return this.pinned(instance.orgId, ref, () =>
      this.transitionPinned(instance, event, origin, ref),
    );
  }

  private async transitionPinned(
    instance: InstanceRecord,
    event: MachineEvent,
    origin: EventOrigin,
    ref: string,
  ): Promise<Committed> {
    const version = versionOf(instance, instance.machineVersionId);
    const readers = this.readersOf(instance);
    const response = await this.deps.runtime.send(
      version,
      machineJsonOf(instance),
      {
        instanceName: instance.instanceName,
        event,
        maxContextBytes: this.deps.maxContextBytes,
        ...(origin.kind === "external" ? { authContext: origin.authContext } : {}),
        // A backstop stands in for an event sent at once, not for one the machine scheduled.
        ...(origin.kind === "timer" && !isSelfEventBackstopKey(origin.timerKey)
          ? { timerKey: origin.timerKey }
          : {}),
        ...readersField(readers),
      },
      ref,
    );
    const step = acceptStep(response);
    this.hold(instance.orgId, ref, step);
    return this.commit(
      version,
      step,
      event,
      eventCommitFields(instance, step, origin, this.deps.clock.now()),
      instance,
      readers,
      // A service's result is in hand, and so is an event the machine sent itself (whose commit
      // takes its backstop, so no two tries both write it): a store error does not drop either.
      origin.kind === "service" || (origin.kind === "self" && origin.backstopKey !== undefined)
        ? this.deps.resultRetryDelaysMs
        : [],
      origin.kind === "self" ? origin.chain : undefined,
    );
  }

  /**
   * Several external events for one instance (the caller holds its mailbox): one sandbox request
   * steps them all, one group commit stores them, each in its own transition. An event refused
   * or failed in the sandbox changes nothing and the next one starts where the last good step
   * left off. `processed` may be less than `items.length` (the batch stopped after a step that
   * sent events to itself, or that was refused here); the caller delivers the rest later.
   */
  async transitionBatch(
    instance: InstanceRecord,
    items: ReadonlyArray<{ event: MachineEvent; authContext: JsonObject; requiresKeyId?: string }>,
  ): Promise<BatchOutcome> {
    const ref = instanceRefOf(instance);
    return this.pinned(instance.orgId, ref, async () => {
      const version = versionOf(instance, instance.machineVersionId);
      const readers = this.readersOf(instance);
      const { results } = await this.deps.runtime.sendBatch(
        version,
        machineJsonOf(instance),
        {
          instanceName: instance.instanceName,
          events: items.map(({ event, authContext }) => ({ event, authContext })),
          maxContextBytes: this.deps.maxContextBytes,
          ...readersField(readers),
        },
        ref,
      );
      if (!Array.isArray(results) || results.length === 0 || results.length > items.length) {
        throw new BackstateError(
          "sandbox-crashed",
          "the sandbox answered a batch with a malformed result",
        );
      }
      let startsServices = false;
      for (const response of results) {
        const step = pendingStep(response);
        if (step === undefined) continue;
        this.hold(instance.orgId, ref, step);
        startsServices ||= (step.servicesStarted?.length ?? 0) > 0;
      }
      // Before any commit is queued: they all go in this same turn, to share a transaction.
      let leased: (() => void) | undefined;
      try {
        if (startsServices) leased = await this.deps.leaseServices(instance);
      } catch (err) {
        for (const response of results) this.discardPending(version, ref, response);
        throw err;
      }
      try {
        return await this.commitBatch(version, ref, instance, items, results, readers);
      } finally {
        leased?.();
      }
    });
  }

  /** transitionBatch's commits, once the sandbox has answered and any lease is taken. */
  private async commitBatch(
    version: VersionRef,
    ref: string,
    instance: InstanceRecord,
    items: ReadonlyArray<{ event: MachineEvent; requiresKeyId?: string }>,
    results: SendBatchResponse["results"],
    readers: readonly Reader[],
  ): Promise<BatchOutcome> {
    const outcomes: Array<Committed | Error> = [];
    const stored: Array<{
      index: number;
      step: Step;
      commit: TransitionCommit;
      previous: InstanceRecord;
      done: Promise<CommitResult>;
    }> = [];
    let previous = instance;
    // A step refused here (too large, malformed) ends the batch: the sandbox built every later
    // step on it, so those are discarded and their events delivered again (see `processed`),
    // from the last state that was kept.
    let processed = results.length;
    results.forEach((response, index) => {
      if (index >= processed) return this.discardPending(version, ref, response);
      try {
        const step = acceptStep(response);
        const origin = { kind: "external", authContext: {} } as const;
        const fields = eventCommitFields(previous, step, origin, this.deps.clock.now());
        const { event, requiresKeyId } = items[index]!;
        const commit = buildCommit(step, event, fields, this.limits(instance), previous);
        if (requiresKeyId !== undefined) commit.requiresKeyId = requiresKeyId;
        // All commits are queued in this same turn, so the store groups them into one transaction.
        stored.push({
          index,
          step,
          commit,
          previous,
          done: this.deps.store.commitTransition(commit),
        });
        previous = projected(previous, commit);
      } catch (err) {
        // Refused in the sandbox (denied, failed), the next step starts where the last good
        // one left off; anything else (a step refused here, a malformed answer) stops here.
        if (response?.outcome !== "denied" && response?.outcome !== "failed") {
          processed = index + 1;
        }
        this.discardPending(version, ref, response);
        outcomes[index] = err as Error;
      }
    });
    // In order, so what the instance's last commit left is what stays remembered.
    for (const { index, step, commit, previous: before, done } of stored) {
      try {
        outcomes[index] = this.finish(version, step, commit, before, await done, readers);
      } catch (err) {
        this.deps.cache.forget(commit.instance);
        if (step.effectsPending) this.discard(version, ref, step.stepId);
        outcomes[index] = err as Error;
      }
    }
    return { outcomes, processed, firstCommit: stored[0]?.index ?? -1 };
  }

  /** The readers watching the instance, up to the number asked about with a step. */
  private readersOf(key: InstanceKey): readonly Reader[] {
    return this.deps.audience(key, MAX_PRECHECKED_READERS);
  }

  private async commit(
    version: VersionRef,
    step: Step,
    event: MachineEvent,
    fields: CommitFields,
    previous: InstanceRecord | undefined,
    readers: readonly Reader[] = [],
    retryDelaysMs: readonly number[] = [],
    /** The self-send chain the step is on (see executed-steps.ts), if an action's send caused it. */
    chain?: SelfSendChain,
  ): Promise<Committed> {
    let leased: (() => void) | undefined;
    try {
      if (step.servicesStarted.length > 0) {
        leased = await retryingStoreErrors(
          () => this.deps.leaseServices(fields.instance),
          retryDelaysMs,
          loggingRetries(this.deps.logger, "lease", instanceRefOf(fields.instance)),
        );
      }
      // A commit tried again after a store error carries an id of its own, by which a later try
      // knows its landed write from another writer's (result-commit-retries.ts).
      const write = retryDelaysMs.length > 0 ? randomUUID() : undefined;
      const limits = this.limits(fields.instance);
      const commit = buildCommit(step, event, fields, limits, previous, write);
      const result = await this.stored(commit, retryDelaysMs);
      return this.finish(version, step, commit, previous, result, readers, chain);
    } catch (err) {
      if (step.effectsPending) this.discard(version, instanceRefOf(fields.instance), step.stepId);
      throw err;
    } finally {
      leased?.();
    }
  }

  /**
   * A commit that failed leaves the row unknown (changed by another writer, or a store error):
   * nothing remembered may stand in for it. (A step refused before its commit changed nothing.)
   * With `retryDelaysMs`, a store error is followed by further tries of the same commit, the
   * step's effects held meanwhile (see result-commit-retries.ts).
   */
  private async stored(
    commit: TransitionCommit,
    retryDelaysMs: readonly number[],
  ): Promise<CommitResult> {
    try {
      return await commitRetryingStoreErrors(
        this.deps.store,
        commit,
        retryDelaysMs,
        (err, retry) => {
          this.deps.cache.forget(commit.instance);
          loggingRetries(this.deps.logger, "commit", instanceRefOf(commit.instance))(err, retry);
        },
      );
    } catch (err) {
      this.deps.cache.forget(commit.instance);
      throw err;
    }
  }

  /** The step is durable: its record and state, and its effects set going. */
  private finish(
    version: VersionRef,
    step: Step,
    commit: TransitionCommit,
    previous: InstanceRecord | undefined,
    result: CommitResult,
    readers: readonly Reader[],
    chain?: SelfSendChain,
  ): Committed {
    const { orgId, machineName, instanceName } = commit.instance;
    const instance = instanceRecord({
      orgId,
      machineName,
      instanceName,
      id: result.instanceId,
      machineVersionId: commit.machineVersionId,
      snapshot: commit.snapshot,
      status: previous?.status ?? "running",
      sequence: result.sequence,
      pendingServices: commit.pendingServices,
      createdAt: previous?.createdAt ?? commit.at,
      updatedAt: commit.at,
    });
    keepMachineJson(instance, keptMachineJson(commit));
    const state = stateOf(viewOf(step), commit.at);
    this.deps.cache.remember(instance);
    this.deps.onCommitted(instance, state, readDecisions(readers, step.readable));
    this.afterCommit(version, instanceRefOf(commit.instance), step, commit, result, chain);
    return { instance, state, step };
  }

  /** Effects, now that the transition is durable: timers to the scheduler, actions and services to the sandbox. */
  private afterCommit(
    version: VersionRef,
    ref: string,
    step: Step,
    commit: TransitionCommit,
    { sequence, instanceId }: CommitResult,
    chain: SelfSendChain | undefined,
  ): void {
    if (commit.timersToArm.length > 0) {
      // A loop, not Math.min(...): spreading many arguments overflows the stack.
      let earliest = Infinity;
      for (const timer of commit.timersToArm) earliest = Math.min(earliest, timer.dueAt);
      this.deps.onTimersArmed(earliest);
    }
    // Started before the others end: a step that stops one service and starts another (a
    // result's onDone into the next invoke) leaves no moment with nothing running, in which a
    // request waiting for the instance to settle would be answered. (A re-entered invoke keeps
    // its id: its new run replaces the old one, which must not end it.)
    if (step.effectsPending) {
      const run = { runId: step.stepId, sequence, instanceId, version };
      this.deps.activity.started(ref, step.servicesStarted, run);
    }
    const restarted = new Set(step.servicesStarted);
    this.deps.activity.ended(
      ref,
      step.servicesStopped.filter((id) => !restarted.has(id)),
    );
    if (!step.effectsPending) return;
    this.deps.executedSteps.record(step.stepId, ref, instanceId, chain);
    void this.pinned(version.orgId, ref, () =>
      this.deps.runtime
        .execute(version, step.stepId, ref)
        .then(
          ({ executed }) => {
            if (executed) return;
            // Its sandbox is not the one that answered the step (it died, or swept the step).
            this.deps.logger.warn("effects of a committed step were no longer in its sandbox", {
              instance: ref,
            });
            this.deps.activity.ended(ref, step.servicesStarted, step.stepId);
          },
          (err: unknown) => {
            // The sandbox died between commit and execution: the effects never ran (at most
            // once), and the services are owed error events before the instance's next event.
            this.deps.logger.warn("effects of a committed step could not run", {
              instance: ref,
              error: String(err),
            });
            this.deps.activity.ended(ref, step.servicesStarted, step.stepId);
          },
        )
        .finally(() => this.unhold(ref, step.stepId)),
    );
  }

  private discard(version: VersionRef, ref: string, stepId: string): void {
    this.deps.runtime
      .discard(version, stepId, ref)
      .catch((err: unknown) => {
        this.deps.logger.debug("could not discard a step", { instance: ref, error: String(err) });
      })
      .finally(() => this.unhold(ref, stepId));
  }

  /** Discards the step a batch answer left waiting in its sandbox, if it left one. */
  private discardPending(version: VersionRef, ref: string, response: StepResponse | undefined) {
    const step = pendingStep(response);
    if (step !== undefined) this.discard(version, ref, step.stepId);
  }

  /** A step whose effects wait in its sandbox: its process stays until they run or go. */
  private hold(orgId: string, ref: string, step: Step): void {
    if (!step.effectsPending) return;
    this.heldSteps.set(`${ref}\u0000${step.stepId}`, this.deps.runtime.holdStep(orgId, ref));
  }

  private unhold(ref: string, stepId: string): void {
    const key = `${ref}\u0000${stepId}`;
    this.heldSteps.get(key)?.();
    this.heldSteps.delete(key);
  }
}

/**
 * The step a batch answer holds in its sandbox (its effects pending), if it is one. Answers come
 * from the sandbox: a malformed one (null, no step) holds nothing.
 */
function pendingStep(response: StepResponse | undefined): Step | undefined {
  return response?.outcome === "step" && response.step?.effectsPending === true
    ? response.step
    : undefined;
}

/** The request field naming the readers to ask about (none: the field is left out). */
function readersField(readers: readonly Reader[]): { readers?: JsonObject[] } {
  return readers.length === 0 ? {} : { readers: readers.map((reader) => reader.authContext) };
}
