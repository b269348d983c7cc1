// The events a sandbox sends back for an instance: those of its running services, and those its
// custom actions send their own instance through `self` (XState 5). Each is checked against what
// this node knows it started (machine code reaches no other instance), bounded by the service
// backlog, then applied in the instance's mailbox as a step of its own.
import { BackstateError } from "../errors.js";
import type { MachineEvent } from "../runtime/adapter-protocol.js";
import { MAX_NOTIFICATION_CHARS } from "../runtime/machine-runtime.js";
import type { InstanceKey, InstanceRecord } from "../store/store.js";
import type { ActivityTracker } from "./activity.js";
import { takeFromChain, type ExecutedSteps, type SelfSendChain } from "./executed-steps.js";
import { isCurrentRun, parseEnvelope } from "./instance-state.js";
import type { Logger } from "./logger.js";
import type { ServiceEventBacklog } from "./service-event-backlog.js";
import { instanceKeyOfRef, type Committed, type StepCommitter } from "./step-committer.js";
import { eventTooLarge } from "./transition-commit.js";

export class SandboxEventIntake {
  constructor(
    private readonly deps: {
      activity: ActivityTracker;
      committer: StepCommitter;
      logger: Logger;
      /** The steps this node had executed lately, which alone may send their instance events. */
      executedSteps: ExecutedSteps;
      /** What running services and actions may have waiting per instance. */
      backlog: ServiceEventBacklog;
      /** Runs work in the instance's mailbox, after every external event posted before it. */
      exclusive: <T>(ref: string, task: () => Promise<T>) => Promise<T>;
      /**
       * Runs `work` on the instance's record, again on a fresh load when another writer moved it
       * on; a store error is final (the engine's retryingRefusals).
       */
      retryingRefusals: <T>(
        key: InstanceKey,
        work: (base: { instance: InstanceRecord }) => Promise<T>,
        load: (key: InstanceKey) => Promise<InstanceRecord>,
      ) => Promise<T>;
      /** The instance's read for a result, tried again on store errors (the engine's). */
      loadForResult: (key: InstanceKey) => Promise<InstanceRecord>;
      /**
       * How many events a chain of steps may send their instance, through actions or with sendTo,
       * each step caused by such an event, from one caused otherwise (the engine's maxSelfEvents).
       */
      maxSelfEvents: number;
      /**
       * Steps the events a committed step sent its machine itself with sendTo, on `chain` (the
       * chain of the action's send that caused the step, if one did), whose budget they count
       * against; resolves with the last commit.
       */
      processSelfEvents: (committed: Committed, chain?: SelfSendChain) => Promise<Committed>;
    },
  ) {}

  /**
   * An event of service `serviceId`'s run `runId`, from the sandbox that runs it: taken only for a
   * service of the sandbox's org that runs here; `final` when it ends the run (done or error).
   */
  onServiceEvent(
    orgId: string,
    ref: string,
    serviceId: string,
    runId: string,
    event: MachineEvent,
    final: boolean,
    chars: number,
  ): void {
    // The ref names org/machine/instance; a sandbox may only speak for its own org.
    const key = instanceKeyOfRef(ref);
    if (
      key.orgId !== orgId ||
      !key.machineName ||
      !key.instanceName ||
      !this.deps.activity.isRunning(ref, serviceId, runId)
    ) {
      this.deps.logger.debug("ignoring a service event for no running service", {
        instance: ref,
        serviceId,
      });
      return;
    }
    if (chars > MAX_NOTIFICATION_CHARS) {
      // Cut down in the sandbox (its event is only its type now): refused as any event too large
      // to store is, and a last one ends the run, whose error event the instance is then owed.
      this.deps.logger.warn("a service result was not applied", {
        instance: ref,
        serviceId,
        error: eventTooLarge(event.type, chars, "characters"),
      });
      if (final) {
        this.deps.activity.ended(ref, [serviceId], runId);
        this.deps.committer.releaseIfIdle(orgId, ref);
      }
      return;
    }
    const tooFast = "a service sends events faster than its instance takes them; dropped";
    if (!this.admittedToBacklog(ref, chars, final, tooFast, { serviceId })) return;
    this.deps
      .exclusive(ref, () =>
        // A store error the result's commit ends on (its tries spent) is final: see retryingRefusals.
        this.deps.retryingRefusals(
          key,
          async ({ instance }) => {
            // A step ahead of this result in the mailbox may have stopped or restarted the service.
            if (!this.deps.activity.isRunning(ref, serviceId, runId)) return;
            if (!instance.pendingServices.includes(serviceId)) return;
            // Or another node's step did: this run was replaced there, and its result is not the
            // current run's. (A record remembered here may not show that yet: its commit is then
            // refused, and the fresh record it is tried again on does.)
            if (!isCurrentRun(instance, serviceId, runId)) return;
            if (instance.status === "paused") {
              // Paused on another node (or since this result was sent): as a pause here would, its
              // services stop and stay pending; their error events come after the resume.
              this.deps.activity.stop(ref);
              throw new BackstateError("invalid-state", "instance is paused");
            }
            // Tried again on store errors, in this mailbox turn (see result-commit-retries.ts).
            await this.deps.processSelfEvents(
              await this.deps.committer.transition(instance, event, {
                kind: "service",
                serviceId,
                final,
              }),
            );
          },
          (k) => this.deps.loadForResult(k),
        ),
      )
      .catch((err: unknown) =>
        this.deps.logger.warn("a service result was not applied", {
          instance: ref,
          serviceId,
          error: String(err),
        }),
      )
      .finally(() => {
        this.deps.backlog.release(ref, chars);
        // An event the service sent while running: it runs on, still pending, still here.
        if (!final) return;
        this.deps.activity.ended(ref, [serviceId], runId);
        this.deps.committer.releaseIfIdle(orgId, ref);
      });
  }

  /**
   * An event a custom action of step `stepId` sent its own instance through `self` (XState 5),
   * from the sandbox that executed the step. Taken only for an instance of the sandbox's org that
   * this node had that step executed for lately (executed-steps.ts): machine code reaches no other.
   * It waits its turn in the instance's mailbox behind what is there already, as a service's
   * event does, and is not stored until it is applied (a node that stops meanwhile loses it).
   * Its step carries on the step's self-send chain, whose budget it counts against: past it, a
   * machine whose every step sends itself another event is stopped (executed-steps.ts).
   */
  onSelfEvent(
    orgId: string,
    ref: string,
    stepId: string,
    event: MachineEvent,
    chars: number,
  ): void {
    const key = instanceKeyOfRef(ref);
    const sender =
      key.orgId === orgId
        ? this.deps.executedSteps.sender(stepId, ref, this.deps.maxSelfEvents)
        : undefined;
    if (sender === undefined) {
      this.deps.logger.debug("ignoring an event for an instance whose step did not run here", {
        instance: ref,
      });
      return;
    }
    const { instanceId, chain } = sender;
    if (chars > MAX_NOTIFICATION_CHARS) {
      this.deps.logger.warn("an event an action sent its instance was not applied", {
        instance: ref,
        error: eventTooLarge(event.type, chars, "characters"),
      });
      return;
    }
    const tooFast = "actions send events faster than their instance takes them; dropped";
    if (!this.admittedToBacklog(ref, chars, false, tooFast, {})) return;
    // Charged only once admitted: an event dropped as too fast leaves the chain its budget.
    if (!this.withinChain(ref, event, chain)) {
      this.deps.backlog.release(ref, chars);
      return;
    }
    this.deps
      .exclusive(ref, () =>
        this.deps.retryingRefusals(
          key,
          async ({ instance }) => {
            const why =
              instance.id !== instanceId
                ? "the instance the step ran for was deleted"
                : instance.status === "paused"
                  ? "the instance is paused"
                  : parseEnvelope(instance.snapshot).view.done
                    ? "the instance is done"
                    : undefined;
            if (why !== undefined) {
              this.deps.logger.info("an event an action sent its instance was dropped", {
                instance: ref,
                event: event.type,
                reason: why,
              });
              return;
            }
            await this.deps.processSelfEvents(
              await this.deps.committer.transition(instance, event, { kind: "self", chain }),
              chain,
            );
          },
          (k) => this.deps.loadForResult(k),
        ),
      )
      .catch((err: unknown) =>
        this.deps.logger.warn("an event an action sent its instance was not applied", {
          instance: ref,
          event: event.type,
          error: String(err),
        }),
      )
      .finally(() => this.deps.backlog.release(ref, chars));
  }

  /**
   * Whether an action's event is within its chain's budget, which it then takes one of; the
   * first one past it is logged (the chain's steps may send more, side by side or from timers).
   */
  private withinChain(ref: string, event: MachineEvent, chain: SelfSendChain): boolean {
    return takeFromChain(chain, () =>
      this.deps.logger.warn("the machine's actions sent it too many events in a row; dropped", {
        instance: ref,
        event: event.type,
        limit: this.deps.maxSelfEvents,
      }),
    );
  }

  /**
   * Whether an event from a running service or an action may wait for its instance (within the
   * service backlog); the first one dropped in a row is logged, with `fields`.
   */
  private admittedToBacklog(
    ref: string,
    chars: number,
    final: boolean,
    warning: string,
    fields: object,
  ): boolean {
    const { admitted, firstDrop } = this.deps.backlog.admit(ref, chars, final);
    if (!admitted && firstDrop) this.deps.logger.warn(warning, { instance: ref, ...fields });
    return admitted;
  }
}
