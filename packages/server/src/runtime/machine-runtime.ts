// The engine's typed view of the sandbox pool: one method per adapter request, JSON in and out.
import { BackstateError, MachineCodeError } from "../errors.js";
import type {
  AdapterNotification,
  CreateRequest,
  InspectResult,
  MachineEvent,
  ReadRequest,
  ReadResponse,
  SendBatchRequest,
  SendBatchResponse,
  SendRequest,
  StepResponse,
} from "./adapter-protocol.js";
import type { SandboxLoss, SandboxNotification, SandboxTarget } from "./sandbox-contract.js";
import { cutMachineText } from "./machine-text.js";
import { MAX_SANDBOX_JSON_CONTAINERS, mayHoldMoreContainers } from "./json-check.js";
import { withSnapshotJson, type WithoutSnapshot } from "./snapshot-payload.js";
import { droppedLinesWarning, KeyedLogBudgets, MACHINE_LOG_BUDGET } from "./log-budget.js";

export { MAX_NOTIFICATION_CHARS } from "./sandbox/notification-bound.js";

/** What the runtime needs of a sandbox pool (SandboxPool implements it; tests may fake it). */
export interface SandboxCaller {
  call(
    target: SandboxTarget,
    op: string,
    payloadJson: string,
    options?: { affinity?: string; timeoutMs?: number },
  ): Promise<string>;
  onNotification(listener: (notification: SandboxNotification) => void): void;
  onSandboxLost(listener: (loss: SandboxLoss) => void): void;
  /** Forgets an affinity's pin once nothing of it lives in a sandbox. */
  release(orgId: string, affinity: string): void;
  /** Keeps the affinity's process while a step waits there for its commit; answers the release. */
  holdStep(orgId: string, affinity: string): () => void;
  close(): Promise<void>;
}

/** A machine version, by org and machine, so its code can be loaded on a cache miss. */
export type VersionRef = { orgId: string; machineName: string; versionId: string };

export type CodeLoader = (version: VersionRef) => Promise<string>;

export type ServiceEventListener = (
  orgId: string,
  instanceRef: string,
  serviceId: string,
  /** The step that started the run of the service that reports (see AdapterNotification). */
  runId: string,
  event: MachineEvent,
  /** Whether the run ends with this event (see AdapterNotification). */
  final: boolean,
  /**
   * How large the notification was, in characters of JSON (an upper bound of the event's); past
   * MAX_NOTIFICATION_CHARS, the sandbox cut `event` down to its type.
   */
  chars: number,
) => void;

export type SelfEventListener = (
  orgId: string,
  instanceRef: string,
  /** The executed step whose custom action sent it (see AdapterNotification). */
  stepId: string,
  event: MachineEvent,
  /** As for a service's event: see ServiceEventListener. */
  chars: number,
) => void;

/** Requests with no effect in the sandbox beyond their answer. */
const RETRYABLE_OPS = new Set(["inspect", "create", "send", "send-batch", "read"]);

export class MachineRuntime {
  /**
   * Per org, the budget of the log lines its machines' adapter reports (an action that threw, a
   * built-in changed): as many as machine code makes happen, and it can make thousands in one
   * step, so they are held to a budget as its console output is (sandbox-process.ts).
   */
  readonly #logBudgets = new KeyedLogBudgets(MACHINE_LOG_BUDGET, undefined, (orgId, dropped) =>
    this.#warnDropped(orgId, dropped),
  );
  readonly #serviceEventListeners: ServiceEventListener[] = [];
  readonly #selfEventListeners: SelfEventListener[] = [];

  constructor(
    private readonly pool: SandboxCaller,
    private readonly loadCode: CodeLoader,
    private readonly log: (level: string, message: string, fields?: object) => void,
  ) {
    // One listener, whoever listens: each notification is parsed once, on the shared main thread.
    pool.onNotification((notification) => this.#onNotification(notification));
  }

  inspect(version: VersionRef): Promise<InspectResult> {
    return this.request(version, "inspect", {});
  }

  /** Loads code that is not stored yet (an upload being checked) under its future version id. */
  inspectCode(version: VersionRef, code: string): Promise<InspectResult> {
    return this.request(version, "inspect", {}, undefined, () => Promise.resolve(code));
  }

  create(version: VersionRef, request: CreateRequest, instanceRef: string): Promise<StepResponse> {
    return this.request(version, "create", request, instanceRef);
  }

  /** `snapshotJson`: the request's snapshot as JSON text (see engine/machine-json.ts). */
  send(
    version: VersionRef,
    snapshotJson: string | undefined,
    request: WithoutSnapshot<SendRequest>,
    instanceRef: string,
  ): Promise<StepResponse> {
    return this.requestJson(version, "send", withSnapshotJson(snapshotJson, request), instanceRef);
  }

  /** As send. */
  sendBatch(
    version: VersionRef,
    snapshotJson: string | undefined,
    request: WithoutSnapshot<SendBatchRequest>,
    instanceRef: string,
  ): Promise<SendBatchResponse> {
    const payloadJson = withSnapshotJson(snapshotJson, request);
    return this.requestJson(version, "send-batch", payloadJson, instanceRef);
  }

  read(version: VersionRef, request: ReadRequest): Promise<ReadResponse> {
    return this.request(version, "read", request);
  }

  /** Runs a committed step's effects; resolves once they have been started, not finished. */
  execute(
    version: VersionRef,
    stepId: string,
    instanceRef: string,
  ): Promise<{ executed: boolean }> {
    return this.request(version, "execute", { stepId, instanceRef }, instanceRef);
  }

  discard(version: VersionRef, stepId: string, instanceRef: string): Promise<unknown> {
    return this.request(version, "discard", { stepId }, instanceRef);
  }

  stopServices(version: VersionRef, instanceRef: string, serviceIds: string[]): Promise<unknown> {
    return this.request(version, "stop-services", { instanceRef, serviceIds }, instanceRef);
  }

  /** Service results. The org is the sandbox's own, so a result can only reach that org. */
  onServiceEvent(listener: ServiceEventListener): void {
    this.#serviceEventListeners.push(listener);
  }

  /**
   * Events custom actions sent their own instance through `self` (XState 5). The org is the
   * sandbox's own; the instance and the step are machine code's word, for the listener to check.
   */
  onSelfEvent(listener: SelfEventListener): void {
    this.#selfEventListeners.push(listener);
  }

  #onNotification({ orgId, json }: SandboxNotification): void {
    let notification: AdapterNotification;
    try {
      notification = JSON.parse(json) as AdapterNotification;
    } catch {
      this.log("warn", "unparseable notification from a sandbox", { orgId });
      return;
    }
    // The larger of the notification and the size the sandbox says it had before it cut it down.
    const chars = () =>
      Math.max(json.length, Number((notification as { chars?: unknown }).chars) || 0);
    if (notification.type === "service-event" && isServiceEvent(notification)) {
      const final = notification.final !== false;
      for (const listener of this.#serviceEventListeners) {
        listener(
          orgId,
          notification.instanceRef,
          notification.serviceId,
          notification.runId,
          notification.event,
          final,
          chars(),
        );
      }
    } else if (notification.type === "self-event" && isSelfEvent(notification)) {
      for (const listener of this.#selfEventListeners) {
        listener(orgId, notification.instanceRef, notification.stepId, notification.event, chars());
      }
    } else if (notification.type === "log") {
      this.#logMachineLine(orgId, String(notification.message));
    }
  }

  #logMachineLine(orgId: string, message: string): void {
    const dropped = this.#logBudgets.of(orgId).admit();
    if (dropped === undefined) return;
    if (dropped > 0) this.#warnDropped(orgId, dropped);
    this.log("info", `machine log: ${cutMachineText(message)}`, { orgId });
  }

  /** Tells the log how many of an org's machine log lines were dropped: with the next, or alone. */
  #warnDropped(orgId: string, dropped: number): void {
    this.log("warn", droppedLinesWarning("machine log", dropped), { orgId });
  }

  onSandboxLost(listener: (loss: SandboxLoss) => void): void {
    this.pool.onSandboxLost(listener);
  }

  /**
   * A step of this instance waits in its sandbox for its commit: the process may not be recycled
   * for another org until the answered release is called (after the step's execute or discard).
   */
  holdStep(orgId: string, instanceRef: string): () => void {
    return this.pool.holdStep(orgId, instanceRef);
  }

  /** Nothing of this instance lives in a sandbox any more: its next call may go anywhere. */
  release(orgId: string, instanceRef: string): void {
    this.pool.release(orgId, instanceRef);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private request<T>(
    version: VersionRef,
    op: string,
    payload: unknown,
    affinity?: string,
    loadCode?: () => Promise<string>,
  ): Promise<T> {
    return this.requestJson(version, op, JSON.stringify(payload), affinity, loadCode);
  }

  private async requestJson<T>(
    version: VersionRef,
    op: string,
    payloadJson: string,
    affinity?: string,
    loadCode: () => Promise<string> = () => this.loadCode(version),
  ): Promise<T> {
    const target: SandboxTarget = { orgId: version.orgId, versionId: version.versionId, loadCode };
    const options = affinity ? { affinity } : undefined;
    let json: string;
    try {
      json = await this.pool.call(target, op, payloadJson, options);
    } catch (err) {
      // A call that died with a sandbox another call took down (`sandbox-crashed`, not its own
      // `sandbox-timeout`) is asked again once, on a fresh process, when asking again is
      // harmless: nothing of a step exists until the engine commits it.
      if ((err as { code?: unknown }).code !== "sandbox-crashed" || !RETRYABLE_OPS.has(op))
        throw err;
      this.log("info", "retrying a call whose sandbox was lost to another call", { op });
      json = await this.pool.call(target, op, payloadJson, options);
    }
    if (mayHoldMoreContainers(json, MAX_SANDBOX_JSON_CONTAINERS)) {
      throw new MachineCodeError(
        "machine-error",
        `the sandbox answered with more than ${MAX_SANDBOX_JSON_CONTAINERS} objects and arrays`,
      );
    }
    try {
      return JSON.parse(json) as T;
    } catch (cause) {
      throw new BackstateError("sandbox-crashed", "the sandbox answered with malformed JSON", {
        cause,
      });
    }
  }
}

function isSelfEvent(n: { instanceRef?: unknown; stepId?: unknown; event?: unknown }): boolean {
  return typeof n.instanceRef === "string" && typeof n.stepId === "string" && isEvent(n.event);
}

function isEvent(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { type?: unknown }).type === "string"
  );
}

function isServiceEvent(n: {
  instanceRef?: unknown;
  serviceId?: unknown;
  runId?: unknown;
  event?: unknown;
}): boolean {
  return (
    typeof n.instanceRef === "string" &&
    typeof n.serviceId === "string" &&
    typeof n.runId === "string" &&
    isEvent(n.event)
  );
}
