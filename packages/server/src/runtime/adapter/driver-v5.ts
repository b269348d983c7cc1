// The XState v5 driver: the pure `initialTransition` / `transition` functions give the next
// snapshot and the actions to execute, so effects can wait for the commit.
import { createActor, initialTransition, transition, type AnyStateMachine } from "xstate";
import type { JsonObject, JsonValue, MachineEvent } from "../adapter-protocol.js";
import {
  generatedId,
  toEvent,
  type DriverStep,
  type MachineDriver,
  type StepData,
  type StepEffects,
} from "./driver.js";
import { toJsonSafe } from "../json-check.js";

type ExecutableAction = {
  type: string;
  info: unknown;
  params: Record<string, unknown> | undefined;
  exec: ((info: unknown, params: unknown) => void) | undefined;
};

type ActorLike = {
  id: string;
  logic: unknown;
  constructor: new (logic: unknown, options: { id: string; input: unknown }) => RunnableActor;
};

type RunnableActor = {
  start(): void;
  stop(): void;
  send(event: unknown): void;
  getSnapshot(): { output?: unknown; error?: unknown; status: string };
  subscribe(observer: { complete?: () => void; error?: (err: unknown) => void }): unknown;
};

export function isV5Machine(value: unknown): value is AnyStateMachine {
  const candidate = value as Partial<AnyStateMachine> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.getInitialSnapshot === "function" &&
    typeof candidate.restoreSnapshot === "function" &&
    typeof candidate.getPersistedSnapshot === "function"
  );
}

export function createV5Driver(machine: AnyStateMachine): MachineDriver {
  const merging = withCallerContext(machine);
  const step = reusableScope(machine);
  return {
    xstateVersion: 5,
    machineId: machine.id,
    initial(context: JsonObject): DriverStep {
      const [snapshot, actions] = initialTransition(merging, context);
      return toDriverStep(machine, snapshot, actions as unknown as ExecutableAction[]);
    },
    transition(persisted: JsonValue, event: MachineEvent): DriverStep {
      const snapshot = restore(machine, persisted);
      const [next, actions]: [unknown, unknown[]] = step
        ? step(snapshot, event)
        : transition(machine, snapshot, event);
      return toDriverStep(machine, next, actions as ExecutableAction[]);
    },
    view(persisted: JsonValue) {
      const snapshot = persisted as { value: JsonValue; context: unknown };
      return { value: snapshot.value, context: snapshot.context };
    },
  };
}

/**
 * The same machine, whose initial context is its own (object, or function of input) with the
 * caller's context shallow-merged over it. The caller's context is also the machine's `input`.
 */
function withCallerContext(machine: AnyStateMachine): AnyStateMachine {
  const Machine = machine.constructor as new (
    config: unknown,
    implementations: unknown,
  ) => AnyStateMachine;
  const own = machine.config.context as unknown;
  const context = (args: { input: unknown }) => {
    const base: unknown = typeof own === "function" ? (own as (a: unknown) => unknown)(args) : own;
    return { ...(base as object | undefined), ...(args.input as object | undefined) };
  };
  return new Machine({ ...machine.config, context }, machine.implementations);
}

/**
 * `transition` from xstate builds a throwaway actor (computing the machine's whole initial state)
 * for every call, most of the cost of a step. This keeps one inert actor scope per machine and
 * takes back, after each step, the children the step registered in its system, so nothing
 * accumulates. Undefined when the machine cannot make an actor without input (then `transition`).
 */
function reusableScope(machine: AnyStateMachine) {
  let self: ReturnType<typeof createActor>;
  try {
    self = createActor(machine);
  } catch {
    return undefined;
  }
  const system = self.system as unknown as { _unregister(actor: unknown): void };
  let collected: ExecutableAction[] = [];
  const scope = {
    self,
    defer: () => {},
    id: "",
    logger: () => {},
    sessionId: "",
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action: ExecutableAction) => void collected.push(action),
  };
  return (snapshot: unknown, event: MachineEvent): [unknown, ExecutableAction[]] => {
    collected = [];
    try {
      const next = machine.transition(snapshot as never, event, scope as never);
      return [next, collected];
    } finally {
      for (const action of collected) {
        if (action.type === "xstate.spawnChild" && action.params?.actorRef)
          system._unregister(action.params.actorRef);
      }
    }
  };
}

function restore(machine: AnyStateMachine, persisted: JsonValue) {
  // Children are revived as refs only; they are never started here (services run on execute).
  return machine.restoreSnapshot(persisted as never, { self: undefined } as never) as never;
}

function toDriverStep(
  machine: AnyStateMachine,
  snapshot: unknown,
  actions: ExecutableAction[],
): DriverStep {
  const s = snapshot as { status: string; error?: unknown; tags: Set<string> };
  if (s.status === "error") throw s.error instanceof Error ? s.error : new Error(String(s.error));
  const persisted = machine.getPersistedSnapshot(
    snapshot as never,
  ) as unknown as StepData["persisted"];
  const data: StepData = {
    persisted,
    tags: [...s.tags],
    done: s.status === "done",
    timers: [],
    cancels: [],
    servicesStopped: [],
    selfEvents: [],
  };
  const effects: StepEffects = { actions: [], services: [], serviceMessages: [] };
  for (const action of actions) collect(action, data, effects);
  return { data, effects };
}

function collect(action: ExecutableAction, data: StepData, effects: StepEffects): void {
  const params = action.params ?? {};
  switch (action.type) {
    case "xstate.raise": {
      const event = toEvent(params.event);
      // Without a delay, v5 has already processed the raised event inside this macrostep.
      if (typeof params.delay === "number") {
        const key = typeof params.id === "string" ? params.id : generatedId(event.type);
        data.timers.push({ key, delayMs: params.delay, event });
      }
      return;
    }
    case "xstate.cancel":
      if (typeof params.sendId === "string") data.cancels.push(params.sendId);
      return;
    case "xstate.spawnChild": {
      const ref = params.actorRef as ActorLike | undefined;
      const id = typeof params.id === "string" ? params.id : ref?.id;
      if (!ref || !id) return;
      effects.services.push({
        id,
        starter: (report) => startActor(ref, id, params.input, report),
        failure: (error) => errorEvent(id, error),
      });
      return;
    }
    case "xstate.stopChild": {
      // XState resolves the action's params to the child's actor ref itself.
      const ref = (params.actorRef ?? params) as { id?: unknown } | string | undefined;
      const id = typeof ref === "string" ? ref : ref?.id;
      if (typeof id === "string") data.servicesStopped.push(id);
      return;
    }
    case "xstate.sendTo": {
      const target = params.to as { id?: unknown } | undefined;
      if (target && typeof target.id === "string") {
        const delayMs = typeof params.delay === "number" ? params.delay : undefined;
        effects.serviceMessages.push({
          serviceId: target.id,
          event: toEvent(params.event),
          ...(delayMs ? { delayMs } : {}),
        });
      }
      return;
    }
    default:
      if (action.exec) {
        const exec = action.exec;
        effects.actions.push(() => exec(action.info, action.params));
      }
  }
}

function startActor(
  ref: ActorLike,
  id: string,
  input: unknown,
  report: (event: MachineEvent, final: boolean) => void,
) {
  const actor = new ref.constructor(ref.logic, { id, input });
  actor.subscribe({
    complete: () => report(doneEvent(id, actor.getSnapshot().output), true),
    error: (error) => report(errorEvent(id, error), true),
  });
  actor.start();
  return { stop: () => actor.stop(), send: (event: MachineEvent) => actor.send(event) };
}

function doneEvent(id: string, output: unknown): MachineEvent {
  return {
    type: `xstate.done.actor.${id}`,
    output: toJsonSafe(output),
    actorId: id,
  } as MachineEvent;
}

function errorEvent(id: string, error: unknown): MachineEvent {
  return {
    type: `xstate.error.actor.${id}`,
    error: toJsonSafe(error),
    actorId: id,
  } as MachineEvent;
}
