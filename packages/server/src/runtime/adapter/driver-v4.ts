// The XState v4 driver, for bundles built the State Backed way (xstate 4 inlined, or imported as
// `npm:xstate`). v4's `machine.transition(state, event)` is pure: it returns the next State with
// the actions still to run, which lets effects wait for the commit as in v5.
import type { JsonObject, JsonValue, MachineEvent } from "../adapter-protocol.js";
import {
  cancelDelayed,
  queueServiceMessage,
  sendToSelf,
  serviceMessage,
  toEvent,
  type DriverStep,
  type MachineDriver,
  type StepData,
  type StepEffects,
} from "./driver.js";
import { toJsonSafe } from "../json-check.js";

type V4Action = {
  type: string;
  exec?: (context: unknown, event: unknown, meta: unknown) => void;
  to?: unknown;
  event?: unknown;
  delay?: unknown;
  id?: unknown;
  sendId?: unknown;
  /** A resolved send's or raise's event, as XState 4 wraps it (`data` is the event itself). */
  _event?: unknown;
  activity?: { id: string; type: string; src: unknown; data?: unknown; meta?: unknown };
  label?: unknown;
  value?: unknown;
};

type V4State = {
  value: JsonValue;
  context: unknown;
  event: unknown;
  _event: unknown;
  actions: V4Action[];
  tags: Set<string>;
  done: boolean;
  toJSON(): Record<string, unknown>;
};

type V4Machine = {
  __xstatenode: true;
  id: string;
  context: unknown;
  options: { services?: Record<string, unknown> };
  withContext(context: unknown): V4Machine;
  initialState: V4State;
  resolveState(state: unknown): V4State;
  transition(state: V4State, event: MachineEvent): V4State;
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

export function isV4Machine(value: unknown): value is V4Machine {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { __xstatenode?: unknown }).__xstatenode === true
  );
}

export function createV4Driver(machine: V4Machine): MachineDriver {
  // v4 builds each state node's `after` timers lazily, the first time the machine initializes.
  // `machine.transition` on a machine that never computed its initial state would enter states
  // without their delayed events, so initialize it now.
  const init = (machine as { _init?: () => void })._init;
  if (typeof init === "function") init.call(machine);
  else void machine.initialState;
  return {
    xstateVersion: 4,
    machineId: machine.id,
    initial(context: JsonObject): DriverStep {
      const own = machine.context;
      const merged = { ...(typeof own === "object" ? own : undefined), ...context };
      return toDriverStep(machine, machine.withContext(merged).initialState);
    },
    transition(persisted: JsonValue, event: MachineEvent): DriverStep {
      const state = machine.resolveState(persisted);
      // The interpreter stops once its machine is done and ignores events; the pure
      // `transition` would still take a root-level transition out of the final state.
      if (state.done) return toDriverStep(machine, state, []);
      return toDriverStep(machine, machine.transition(state, event));
    },
    view(persisted: JsonValue) {
      const state = persisted as { value: JsonValue; context: unknown };
      return { value: state.value, context: state.context };
    },
  };
}

function toDriverStep(machine: V4Machine, state: V4State, actions = state.actions): DriverStep {
  const json = state.toJSON();
  const persisted = { value: state.value, context: state.context } as StepData["persisted"];
  for (const field of PERSISTED_FIELDS)
    if (json[field] !== undefined) persisted[field] = json[field];
  const data: StepData = {
    persisted,
    tags: [...state.tags],
    done: state.done,
    timers: [],
    cancels: [],
    servicesStopped: [],
    selfEvents: [],
  };
  const effects: StepEffects = { actions: [], services: [], serviceMessages: [], cancels: [] };
  for (const action of actions) collect(machine, state, action, data, effects);
  return { data, effects };
}

function collect(
  machine: V4Machine,
  state: V4State,
  action: V4Action,
  data: StepData,
  effects: StepEffects,
) {
  switch (action.type) {
    case "xstate.send": {
      const event = toEvent(action.event);
      const toSelf = action.to === undefined || action.to === "#_internal";
      if (toSelf) sendToSelf(data, event, action.delay, action.id);
      else if (typeof action.to === "string" && action.to !== "#_parent") {
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
        starter: (report) => startService(machine, state, activity, report),
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

function startService(
  machine: V4Machine,
  state: V4State,
  activity: NonNullable<V4Action["activity"]>,
  report: (event: MachineEvent, final: boolean) => void,
) {
  const srcType =
    typeof activity.src === "string" ? activity.src : (activity.src as { type?: string })?.type;
  const creator = srcType === undefined ? undefined : machine.options.services?.[srcType];
  if (typeof creator !== "function")
    throw new Error(`service "${String(srcType)}" is not implemented`);
  const source: unknown = (creator as (c: unknown, e: unknown, m: unknown) => unknown)(
    state.context,
    state.event,
    {
      data: mappedData(activity.data, state.context, state.event),
      src: activity.src,
      meta: activity.meta,
    },
  );
  let stopped = false;
  if (source && typeof (source as PromiseLike<unknown>).then === "function") {
    (source as PromiseLike<unknown>).then(
      (value) =>
        !stopped &&
        report(
          { type: `done.invoke.${activity.id}`, data: toJsonSafe(value) } as MachineEvent,
          true,
        ),
      (error: unknown) => !stopped && report(errorEvent(activity.id, error), true),
    );
    return { stop: () => void (stopped = true) };
  }
  if (typeof source === "function") {
    // A callback service: events it sends back go to the instance; it never "completes".
    const listeners: Array<(event: unknown) => void> = [];
    const cleanup: unknown = (source as (send: unknown, receive: unknown) => unknown)(
      (event: unknown) => !stopped && report(toEvent(event), false),
      (listener: (event: unknown) => void) => listeners.push(listener),
    );
    return {
      stop: () => {
        stopped = true;
        if (typeof cleanup === "function") (cleanup as () => void)();
      },
      send: (event: MachineEvent) => listeners.forEach((listener) => listener(event)),
    };
  }
  throw new Error(
    `service "${srcType}" returned neither a promise nor a callback (child machines are not supported yet)`,
  );
}

function errorEvent(id: string, error: unknown): MachineEvent {
  return { type: `error.platform.${id}`, data: toJsonSafe(error) } as MachineEvent;
}

/**
 * An invoke's `data` as XState 4 hands it to the service: a function of (context, event), or an
 * object whose function values are, evaluated now; anything else as it is.
 */
function mappedData(data: unknown, context: unknown, event: unknown): unknown {
  const evaluate = (value: unknown) =>
    typeof value === "function"
      ? (value as (c: unknown, e: unknown) => unknown)(context, event)
      : value;
  if (typeof data === "function" || data === null || typeof data !== "object")
    return evaluate(data);
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, evaluate(value)]));
}
