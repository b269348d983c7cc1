// One XState 4 macrostep as the adapter uses it: the State `machine.transition` returned, turned
// into the step's data (what the engine commits) and the effects to run after the commit. Shared
// by the driver (an instance) and by a child machine run in the sandbox (v4-child-machine.ts).
import type { JsonValue, MachineEvent } from "../adapter-protocol.js";
import type { Running } from "./services.js";
import {
  cancelDelayed,
  markSentBeforeStop,
  queueServiceMessage,
  sendToSelf,
  serviceMessage,
  toEvent,
  type DriverStep,
  type StepData,
  type StepEffects,
} from "./driver.js";
import { toJsonSafe } from "../json-check.js";

export type V4Action = {
  type: string;
  exec?: (context: unknown, event: unknown, meta: unknown) => void;
  to?: unknown;
  event?: unknown;
  delay?: unknown;
  id?: unknown;
  sendId?: unknown;
  /** A resolved send's or raise's event, as XState 4 wraps it (`data` is the event itself). */
  _event?: unknown;
  activity?: V4Activity;
  label?: unknown;
  value?: unknown;
};

export type V4Activity = {
  id: string;
  type: string;
  src: unknown;
  data?: unknown;
  meta?: unknown;
};

/** Whether `value` is an XState 4 machine (a StateNode at its root), of whatever XState 4 copy. */
export function isV4Machine(value: unknown): value is V4Machine {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { __xstatenode?: unknown }).__xstatenode === true
  );
}

/** A state node as a State's configuration holds it (only what the adapter reads). */
export type V4StateNode = {
  type: string;
  parent?: V4StateNode;
  doneData?: unknown;
  invoke?: Array<{ id: string; autoForward?: boolean; forward?: boolean }>;
};

export type V4State = {
  value: JsonValue;
  context: unknown;
  event: unknown;
  _event: unknown;
  actions: V4Action[];
  tags: Set<string>;
  done: boolean;
  configuration?: V4StateNode[];
  nextEvents?: string[];
  toJSON(): Record<string, unknown>;
};

export type V4Machine = {
  __xstatenode: true;
  id: string;
  context: unknown;
  options: { services?: Record<string, unknown> };
  withContext(context: unknown): V4Machine;
  initialState: V4State;
  resolveState(state: unknown): V4State;
  transition(state: V4State, event: MachineEvent): V4State;
};

export type V4ServiceStart = (
  machine: V4Machine,
  state: V4State,
  activity: V4Activity,
  report: (event: MachineEvent, final: boolean) => void,
) => Running;

/**
 * `startService` runs an invoke of the step once it executes. `toParent` takes the machine's
 * sendParent events when it is a child running in the sandbox; an instance has no parent.
 */
export type V4StepHooks = {
  startService: V4ServiceStart;
  toParent?: (event: MachineEvent, delay: unknown, id: unknown) => void;
  /** False for a child run in the sandbox: its State is never stored, so not made JSON. */
  persist?: boolean;
};

// Fields of a v4 State worth persisting; the rest is derived again by `resolveState`.
const PERSISTED_FIELDS = [
  "value",
  "context",
  "historyValue",
  "_event",
  "_sessionid",
  "event",
  "activities",
];

// Actions v4 has already applied inside `transition` or that mean nothing after it.
const RESOLVED_ACTIONS = new Set([
  "xstate.assign",
  "xstate.pure",
  "xstate.choose",
  "xstate.respond",
  "xstate.error",
]);

export function toDriverStep(
  machine: V4Machine,
  state: V4State,
  actions: V4Action[],
  hooks: V4StepHooks,
): DriverStep {
  const persisted = { value: state.value, context: state.context } as StepData["persisted"];
  if (hooks.persist !== false) {
    const json = state.toJSON();
    for (const field of PERSISTED_FIELDS)
      if (json[field] !== undefined) persisted[field] = json[field];
  }
  const data: StepData = {
    persisted,
    tags: [...state.tags],
    done: state.done,
    timers: [],
    cancels: [],
    detaches: [],
    servicesStopped: [],
    selfEvents: [],
  };
  const effects: StepEffects = { actions: [], services: [], serviceMessages: [], cancels: [] };
  for (const action of actions) collect(machine, state, action, data, effects, hooks);
  return { data, effects };
}

function collect(
  machine: V4Machine,
  state: V4State,
  action: V4Action,
  data: StepData,
  effects: StepEffects,
  hooks: V4StepHooks,
) {
  switch (action.type) {
    case "xstate.send": {
      const event = toEvent(action.event);
      const toSelf = action.to === undefined || action.to === "#_internal";
      if (toSelf) sendToSelf(data, event, action.delay, action.id);
      else if (action.to === "#_parent") {
        // In order with the step's other actions, as XState 4's interpreter sends it.
        const toParent = hooks.toParent;
        if (toParent) effects.actions.push(() => toParent(event, action.delay, action.id));
      } else if (typeof action.to === "string") {
        queueServiceMessage(effects, serviceMessage(action.to, event, action.delay, action.id));
      }
      return;
    }
    case "xstate.raise":
      // Only a delayed raise is left among the actions (v4 took the others inside `transition`);
      // XState 4's interpreter schedules it as it does a delayed `send` to itself.
      if (typeof action.delay === "number") {
        const raised = (action._event as { data?: unknown } | undefined)?.data;
        sendToSelf(data, toEvent(raised), action.delay, action.id);
      }
      return;
    case "xstate.cancel":
      if (typeof action.sendId === "string") cancelDelayed(data, effects, action.sendId);
      return;
    case "xstate.start": {
      const activity = action.activity;
      if (activity?.type !== "xstate.invoke") return;
      effects.services.push({
        id: activity.id,
        starter: (report) => hooks.startService(machine, state, activity, report),
        failure: (error) => errorEvent(activity.id, error),
      });
      return;
    }
    case "xstate.stop": {
      if (action.activity?.type !== "xstate.invoke") return;
      const id = action.activity.id;
      // Started by this same step (a state entered and left in one macrostep): XState 4's
      // interpreter starts it and stops it at once, so its body runs but it never answers.
      const started = effects.services.find((service) => service.id === id);
      if (started) {
        effects.services = effects.services.filter((service) => service !== started);
        effects.actions.push(() => started.starter(() => {}).stop());
      }
      markSentBeforeStop(effects, id);
      data.servicesStopped.push(id);
      return;
    }
    case "xstate.log":
      effects.actions.push(() => console.log(action.label ?? "", action.value));
      return;
    default:
      if (RESOLVED_ACTIONS.has(action.type) || !action.exec) return;
      {
        const exec = action.exec;
        effects.actions.push(() =>
          exec(state.context, state.event, { action, state, _event: state._event }),
        );
      }
  }
}

/**
 * The ids of the state's invokes marked `autoForward` (or the older `forward`): all running. XState
 * 4's interpreter hands each event its machine takes to them first, an instance's and a child's.
 */
export function autoForwarded(state: V4State): string[] {
  const ids: string[] = [];
  for (const node of state.configuration ?? [])
    for (const invoke of node.invoke ?? [])
      if (invoke.autoForward ?? invoke.forward) ids.push(invoke.id);
  return ids;
}

export function errorEvent(id: string, error: unknown): MachineEvent {
  return { type: `error.platform.${id}`, data: toJsonSafe(error) } as MachineEvent;
}

/**
 * An invoke's `data` (or a final state's) as XState 4 maps it: a function of (context, event), or
 * an object whose function values are, evaluated now; anything else as it is.
 */
export function mappedData(data: unknown, context: unknown, event: unknown): unknown {
  const evaluate = (value: unknown) =>
    typeof value === "function"
      ? (value as (c: unknown, e: unknown) => unknown)(context, event)
      : value;
  if (typeof data === "function" || data === null || typeof data !== "object")
    return evaluate(data);
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, evaluate(value)]));
}
