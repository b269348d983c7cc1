// The requests the engine makes of a machine version's adapter (inside its sandbox) and the
// answers it gets back. Types only: both sides import them; values cross as JSON text.

export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JsonObject = { [key: string]: JsonValue };

/** A machine event as the machine sees it (string events are normalized to `{ type }`). */
export type MachineEvent = { type: string; [key: string]: JsonValue };

/** What the adapter reports about a loaded bundle. */
export type InspectResult = {
  xstateVersion: 4 | 5;
  machineId: string;
  hasAllowRead: boolean;
  hasAllowWrite: boolean;
};

/** Create: `allowWrite` (initialization) when `authContext` is given, then the initial step. */
export type CreateRequest = {
  instanceName: string;
  context: JsonObject;
  /** Absent for trusted callers that skip the authorizer (none yet). */
  authContext?: JsonObject;
  maxContextBytes?: number;
};

/** Send: `allowWrite` (event) when `authContext` is given, then one transition. */
export type SendRequest = {
  instanceName: string;
  snapshot: JsonValue;
  event: MachineEvent;
  authContext?: JsonObject;
  /** A step whose context is larger (as UTF-8 JSON) fails with `context-too-large`. */
  maxContextBytes?: number;
  /** Readers to ask `allowRead` about the step's state (Step.readable): engine/read-audience.ts. */
  readers?: JsonObject[];
  /** The send id of the delayed event this is the delivery of (XState 5 then forgets the id). */
  timerKey?: string;
};

/**
 * Several events for one instance in one request: each is authorized and stepped from the
 * snapshot the previous successful step left (a refused or failed event changes nothing). The
 * batch stops after a step that sent events to itself; `results` then has fewer entries than
 * `events`, and the engine sends the rest again once those are processed.
 */
export type SendBatchRequest = {
  instanceName: string;
  snapshot: JsonValue;
  events: Array<{ event: MachineEvent; authContext?: JsonObject }>;
  maxContextBytes?: number;
  /** As in SendRequest: asked about each step's state. */
  readers?: JsonObject[];
};

export type SendBatchResponse = { results: StepResponse[] };

export type ReadRequest = { instanceName: string; snapshot: JsonValue; authContext: JsonObject };

/**
 * A delayed event to arm as a durable timer. `detached`: no cancel of its key reaches it (another
 * was armed under the key after it in the same step), yet it fires (see store.ts, TimerToArm).
 */
export type TimerEffect = { key: string; delayMs: number; event: MachineEvent; detached?: true };

/** The outcome of one macrostep, before it is committed. */
export type Step = {
  /** Names the stashed effects: `execute` runs them after the commit, `discard` drops them. */
  stepId: string;
  /** False when the step has nothing to run after the commit: no `execute` needed. */
  effectsPending: boolean;
  snapshot: JsonValue;
  value: JsonValue;
  tags: string[];
  done: boolean;
  /** `context.public`, or undefined when the context has none. */
  publicContext?: JsonValue;
  /** Size of the context as UTF-8 JSON, for the 400 KB limit. */
  contextBytes: number;
  timers: TimerEffect[];
  /** Send ids of timers to cancel: each reaches its key's timer armed last, unless detached. */
  cancels: string[];
  /** Send ids whose timer armed last stays armed, out of a cancel's reach (store.ts). */
  detaches: string[];
  /** Ids of services this step starts (once executed). */
  servicesStarted: string[];
  /** Ids of services this step stops. */
  servicesStopped: string[];
  /** Events the machine sent to itself without delay: processed next, before queued events. */
  selfEvents: MachineEvent[];
  /**
   * `allowRead`'s answer on this step's state for each of the request's `readers`, in order:
   * the realtime hub's decisions for the watchers of the instance, made without another call.
   */
  readable?: boolean[];
};

export type MachineFailure = {
  code: "machine-error" | "not-json-serializable" | "context-too-large";
  message: string;
};

/** The answer to create and send: denied by the authorizer, failed in machine code, or a step. */
export type StepResponse =
  | { outcome: "denied"; reason: string }
  | { outcome: "failed"; failure: MachineFailure }
  | { outcome: "step"; step: Step };

export type ReadResponse = { allowed: boolean; reason?: string };

/** After the commit: run the step's actions and start its services for this instance. */
export type ExecuteRequest = { stepId: string; instanceRef: string };
export type DiscardRequest = { stepId: string };
/** Stop running services of an instance (settle timeout); they will not report. */
export type StopServicesRequest = { instanceRef: string; serviceIds: string[] };

/** Notifications from an adapter to the host. */
export type AdapterNotification =
  | {
      type: "service-event";
      instanceRef: string;
      serviceId: string;
      /**
       * The step whose execution started this run of the service. A re-entered invoke keeps its
       * id, so a result still on its way from the run it replaced is told apart by this.
       */
      runId: string;
      /** The event to deliver to the instance: the run's done or error event, or one it sent. */
      event: MachineEvent;
      /**
       * false: the service runs on after this event (one a callback sent back). Absent or true:
       * its last report (done, error), after which it runs no more.
       */
      final?: boolean;
      /**
       * Set by the sandbox when the notification was too large to send whole: its size, in
       * characters of JSON; `event` is then cut down to its type (see notification-bound.ts).
       */
      chars?: number;
    }
  | {
      /** An event a custom action of step `stepId` sent its own instance through `self` (v5). */
      type: "self-event";
      instanceRef: string;
      /** The executed step whose action sent it: the host checks it ran that step there. */
      stepId: string;
      event: MachineEvent;
      /** As for a service-event: set when the notification was cut down (notification-bound.ts). */
      chars?: number;
    }
  | { type: "log"; level: "log" | "info" | "warn" | "error" | "debug"; message: string };

/**
 * How many events the actions of one step may send their own instance through `self`; the rest
 * are dropped in the sandbox. As many as a step may send itself with `raise` or `sendTo`
 * (STEP_LIMITS.maxSelfEventsSent), which is this same number.
 */
export const MAX_SELF_SENDS_PER_STEP = 1_000;

/**
 * The longest step id the host takes. The adapter makes them `step-<random>-<n>`, some 30
 * characters; the host keeps them (held steps, service runs, the steps whose actions may still
 * send their instance events), and an id is the sandbox's word: one of megabytes is refused.
 */
export const MAX_STEP_ID_CHARS = 128;

export type AdapterOp =
  "inspect" | "create" | "send" | "read" | "execute" | "discard" | "stop-services";
