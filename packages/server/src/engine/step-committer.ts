// The heart of the path of one event: ask the sandbox for the step, commit it, and only then let
// its effects run. A step that fails any check is discarded in the sandbox and changes nothing.
import { BackstateError, MachineCodeError, RejectedByMachineAuthorizerError } from "../errors.js";
import type { JsonObject, MachineEvent, Step, StepResponse } from "../runtime/adapter-protocol.js";
import type { MachineRuntime, VersionRef } from "../runtime/machine-runtime.js";
import type { InstanceKey, InstanceRecord, Store, TransitionCommit } from "../store/store.js";
import type { ActivityTracker } from "./activity.js";
import type { Clock } from "./clock.js";
import { envelopeOf, parseEnvelope, stateOf, type InstanceState } from "./instance-state.js";
import type { Logger } from "./logger.js";

/** Where an event comes from decides what is checked and what the commit also does. */
export type EventOrigin =
  | { kind: "external"; authContext: JsonObject }
  | { kind: "timer"; timerId: number }
  | { kind: "service"; serviceId: string }
  | { kind: "self" };

export type Committed = { instance: InstanceRecord; state: InstanceState; step: Step };

export type CommitterDeps = {
  store: Store;
  runtime: MachineRuntime;
  activity: ActivityTracker;
  clock: Clock;
  logger: Logger;
  maxContextBytes: number;
  /** Told the earliest due time of timers a commit armed. */
  onTimersArmed: (dueAt: number) => void;
};

export function instanceRefOf(key: InstanceKey): string {
  return `${key.orgId}/${key.machineName}/${key.instanceName}`;
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

  constructor(private readonly deps: CommitterDeps) {}

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
      { instanceName: key.instanceName, context, authContext },
      ref,
    );
    const step = this.accept(response);
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
    const response = await this.deps.runtime.send(
      version,
      {
        instanceName: instance.instanceName,
        snapshot: parseEnvelope(instance.snapshot).machine,
        event,
        ...(origin.kind === "external" ? { authContext: origin.authContext } : {}),
      },
      ref,
    );
    const step = this.accept(response);
    const pending = new Set(instance.pendingServices);
    if (origin.kind === "service") pending.delete(origin.serviceId);
    for (const id of step.servicesStopped) pending.delete(id);
    for (const id of step.servicesStarted) pending.add(id);
    return this.commit(
      version,
      step,
      event,
      {
        kind: "event",
        instance: {
          orgId: instance.orgId,
          machineName: instance.machineName,
          instanceName: instance.instanceName,
        },
        instanceId: instance.id,
        machineVersionId: instance.machineVersionId,
        expectedSequence: instance.sequence,
        pendingServices: [...pending],
        // ts strictly increases per instance, even when two commits share a millisecond.
        at: Math.max(this.deps.clock.now(), instance.updatedAt + 1),
        ...(origin.kind === "timer" ? { deliveredTimerId: origin.timerId } : {}),
      },
      instance,
    );
  }

  private accept(response: StepResponse): Step {
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

  private async commit(
    version: VersionRef,
    step: Step,
    event: MachineEvent,
    partial: Omit<TransitionCommit, "snapshot" | "transition" | "timersToArm" | "timersToCancel">,
    previous: InstanceRecord | undefined,
  ): Promise<Committed> {
    const ref = instanceRefOf(partial.instance);
    const commit: TransitionCommit = {
      ...partial,
      snapshot: envelopeOf(step),
      transition: { event: JSON.stringify(event), state: JSON.stringify(step.value) },
      // Delays run from the clock, not from `at`, which may sit a millisecond ahead to keep ts increasing.
      timersToArm: step.timers.map((t) => ({
        key: t.key,
        dueAt: this.deps.clock.now() + t.delayMs,
        event: JSON.stringify(t.event),
      })),
      timersToCancel: step.cancels,
    };
    try {
      if (step.contextBytes > this.deps.maxContextBytes) {
        throw new BackstateError(
          "context-too-large",
          `the context would be ${step.contextBytes} bytes as JSON; the limit is ${this.deps.maxContextBytes}`,
        );
      }
      const result = await this.deps.store.commitTransition(commit);
      const instance: InstanceRecord = {
        ...(previous ?? { createdAt: partial.at, status: "running" as const }),
        ...partial.instance,
        id: result.instanceId,
        machineVersionId: partial.machineVersionId,
        snapshot: commit.snapshot,
        sequence: result.sequence,
        pendingServices: commit.pendingServices,
        updatedAt: partial.at,
      };
      this.afterCommit(version, ref, step, commit);
      return { instance, state: stateOf(parseEnvelope(commit.snapshot).view, partial.at), step };
    } catch (err) {
      if (step.effectsPending) this.discard(version, ref, step.stepId);
      throw err;
    }
  }

  /** Effects, now that the transition is durable: timers to the scheduler, actions and services to the sandbox. */
  private afterCommit(
    version: VersionRef,
    ref: string,
    step: Step,
    commit: TransitionCommit,
  ): void {
    if (commit.timersToArm.length > 0) {
      this.deps.onTimersArmed(Math.min(...commit.timersToArm.map((t) => t.dueAt)));
    }
    this.deps.activity.ended(ref, step.servicesStopped);
    if (!step.effectsPending) return;
    this.deps.activity.started(ref, version, step.servicesStarted);
    void this.pinned(version.orgId, ref, () =>
      this.deps.runtime.execute(version, step.stepId, ref).then(
        ({ executed }) => {
          if (!executed) this.deps.activity.ended(ref, step.servicesStarted);
        },
        (err: unknown) => {
          // The sandbox died between commit and execution: the effects never ran (at most once),
          // and the services are owed error events before the instance's next event.
          this.deps.logger.warn("effects of a committed step could not run", {
            instance: ref,
            error: String(err),
          });
          this.deps.activity.ended(ref, step.servicesStarted);
        },
      ),
    );
  }

  private discard(version: VersionRef, ref: string, stepId: string): void {
    this.deps.runtime.discard(version, stepId, ref).catch((err: unknown) => {
      this.deps.logger.debug("could not discard a step", { instance: ref, error: String(err) });
    });
  }
}
