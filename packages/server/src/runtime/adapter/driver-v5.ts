// The XState v5 driver: the pure `initialTransition` / `transition` functions give the next
// snapshot and the actions to execute, so effects can wait for the commit.
import { createActor, initialTransition, transition, type AnyStateMachine } from "xstate";
import type { JsonObject, JsonValue, MachineEvent } from "../adapter-protocol.js";
import {
  cancelDelayed,
  detachTimer,
  markSentBeforeStop,
  queueServiceMessage,
  sendToSelf,
  serviceMessage,
  toEvent,
  type DriverStep,
  type MachineDriver,
  type StepData,
  type StepEffects,
} from "./driver.js";
import { instanceSelf, keepNothingOn, ROOT_ACTOR_ID, type InstanceSelf } from "./instance-self.js";
import { toJsonSafe } from "../json-check.js";
import { revivingInlineChildren, withInlineChildrenNamed } from "./v5-inline-children.js";
import { addressedToParent, markingInstanceRef } from "./v5-sender-self.js";

type ExecutableAction = {
  type: string;
  info: unknown;
  params: Record<string, unknown> | undefined;
  exec: ((info: unknown, params: unknown) => void) | undefined;
};

type ActorLike = {
  id: string;
  logic: unknown;
  options?: { input?: unknown; syncSnapshot?: boolean };
  constructor: new (
    logic: unknown,
    options: { id: string; input?: unknown; parent?: RunnableActor; syncSnapshot?: boolean },
  ) => RunnableActor;
};

type RunnableActor = {
  start(): void;
  stop(): void;
  /** XState's own way to stop a child (stop() refuses an actor that has a parent). */
  _stop(): void;
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

export function createV5Driver(bundled: AnyStateMachine): MachineDriver {
  const machine = revivingInlineChildren(bundled);
  const merging = withCallerContext(machine);
  const step = reusableScope(machine);
  return {
    xstateVersion: 5,
    machineId: machine.id,
    initial(context: JsonObject): DriverStep {
      const [snapshot, actions] = initialTransition(merging, context);
      return toDriverStep(machine, snapshot, actions as unknown as ExecutableAction[]);
    },
    transition(persisted: JsonValue, event: MachineEvent, timerKey?: string): DriverStep {
      const snapshot = restore(machine, persisted);
      // An actor that reached its final state has stopped and ignores events; the pure
      // `transition` would still take a root-level transition out of it.
      if ((snapshot as { status?: unknown }).status !== "active")
        return toDriverStep(machine, snapshot, [], snapshot);
      const [next, actions]: [unknown, unknown[]] = step
        ? step(snapshot, event)
        : transition(machine, snapshot, event);
      return toDriverStep(machine, next, actions as ExecutableAction[], snapshot, timerKey);
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
    self = createActor(machine, { id: ROOT_ACTOR_ID });
  } catch {
    return undefined;
  }
  // What an assign sees as `self.id` and `self.sessionId`: the ones a custom action's own `self`
  // has (instance-self.ts), not the session XState booked, numbered by a counter of the sandbox's.
  // The actor is never started, so no system holds it under the session it booked.
  (self as { sessionId: string }).sessionId = ROOT_ACTOR_ID;
  // Machine code reaches this actor while a step is computed (an assign's or enqueueActions'
  // `self` and `system`): it must keep nothing of what one instance hands it.
  keepNothingOn(self);
  const system = self.system as unknown as {
    _unregister: (actor: unknown) => void;
    _set: (systemId: string, actor: unknown) => void;
    get: (systemId: string) => unknown;
  };
  // Revived children registered for the step under way. The driver cannot tell whether one of
  // them has finished (it runs elsewhere; XState keeps a finished child among the children, and
  // unregisters it): such a child yields its systemId to a child that claims it later, rather
  // than make the step throw (two revived children keep the later one, the newer spawn).
  const revived = new Set<unknown>();
  const set = system._set;
  system._set = (systemId, actor) => {
    const holder = system.get(systemId);
    if (holder !== undefined && holder !== actor && revived.has(holder)) system._unregister(holder);
    set(systemId, actor);
  };
  let collected: ExecutableAction[] = [];
  const scope = {
    self,
    defer: () => {},
    id: ROOT_ACTOR_ID,
    // The `log` action's output, when the action runs (after the commit): the machine console,
    // as XState 4's log actions go there too.
    logger: (...args: unknown[]) => console.log(...args),
    sessionId: ROOT_ACTOR_ID,
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action: ExecutableAction) => {
      // As XState's stopChild does at once: frees the child's systemId, so a child started
      // later in the step (a reentered state's invoke) may take it.
      if (action.type === "xstate.stopChild" && action.params) system._unregister(action.params);
      collected.push(action);
    },
  };
  return (snapshot: unknown, event: MachineEvent): [unknown, ExecutableAction[]] => {
    collected = [];
    let next: unknown;
    // Children revived from the snapshot each sit in a system of their own: those with a
    // systemId are put in this scope's system for the step, so `system.get(systemId)` finds them
    // as it does in XState's own actor (not finding one, a sendTo would go to the instance).
    const keyed = Object.values(childrenOf(snapshot)).filter(
      (child): child is ActorLike & { systemId: string } =>
        typeof (child as { systemId?: unknown } | undefined)?.systemId === "string",
    );
    try {
      for (const child of keyed) {
        revived.add(child);
        system._set(child.systemId, child);
      }
      next = machine.transition(snapshot as never, event, scope as never);
      return [next, collected];
    } finally {
      for (const action of collected) {
        if (action.type === "xstate.spawnChild" && action.params?.actorRef)
          system._unregister(action.params.actorRef);
      }
      for (const child of keyed) system._unregister(child);
      revived.clear();
      // Children spawned in an assign hold their systemId in this scope's system too.
      const had = new Set(Object.values(childrenOf(snapshot)));
      for (const child of Object.values(childrenOf(next))) {
        if (!had.has(child)) system._unregister(child);
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
  before?: unknown,
  timerKey?: string,
): DriverStep {
  const s = snapshot as { status: string; error?: unknown; tags: Set<string> };
  if (s.status === "error") throw s.error instanceof Error ? s.error : new Error(String(s.error));
  const persisted = withInlineChildrenNamed(
    machine.getPersistedSnapshot(snapshot as never) as unknown as StepData["persisted"],
  );
  const data: StepData = {
    persisted,
    tags: [...s.tags],
    done: s.status === "done",
    timers: [],
    cancels: [],
    detaches: [],
    servicesStopped: [],
    selfEvents: [],
  };
  // XState 5's scheduler forgets a delayed event's id once it delivers it, before the step the
  // event takes: an event armed earlier under that id still fires, and a cancel no longer
  // reaches it. (XState 4's keeps the id on the last one armed.)
  if (timerKey !== undefined) detachTimer(data, timerKey);
  // XState 5's actor runs an event's actions while it takes the event, before it stores the state
  // the event leads to, and the first step's actions once it has stored the initial state: what
  // `self.getSnapshot()` answers in them.
  // Its `system` is the one the step's actions get (each action's arguments carry the same).
  const system = (
    actions.find((action) => action.info !== undefined)?.info as { system?: unknown } | undefined
  )?.system;
  const self = instanceSelf(before ?? snapshot, system);
  const effects: StepEffects = {
    actions: [],
    services: [],
    serviceMessages: [],
    cancels: [],
    self,
  };
  for (const action of actions) collect(action, data, effects, self);
  for (const [id, ref] of spawnedInAssign(before, snapshot, actions)) {
    effects.services.push({
      id,
      starter: (report) => startActor(ref, id, ref.options?.input, report),
      failure: (error) => errorEvent(id, error),
    });
    // Spawned while the step's transitions were taken, before any of its actions ran.
    for (const message of effects.serviceMessages)
      if (message.serviceId === id) message.toNewRun = true;
  }
  return { data, effects };
}

/**
 * Children that `spawn` made inside an assign during the step. XState starts those through the
 * actor scope's `defer`, which a pure step has none of (and no action names them): they are the
 * children of the new snapshot that the old one did not hold and that no spawnChild action
 * started. Told by the ref itself, not its key: XState keeps a finished child among the
 * children, and a spawn under its id puts a new ref under the same key.
 */
function spawnedInAssign(
  before: unknown,
  after: unknown,
  actions: ExecutableAction[],
): Array<[string, ActorLike]> {
  const had = new Set(Object.values(childrenOf(before)));
  // By the ref itself: a spawnChild without an id keeps its child under the key "undefined".
  const started = new Set(
    actions.filter((action) => action.type === "xstate.spawnChild").map((a) => a.params?.actorRef),
  );
  return Object.entries(childrenOf(after)).filter(
    (entry): entry is [string, ActorLike] =>
      entry[1] !== undefined && !had.has(entry[1]) && !started.has(entry[1]),
  );
}

/** A snapshot's children by key (none for a snapshot that has none, or no snapshot). */
function childrenOf(snapshot: unknown): Record<string, ActorLike | undefined> {
  return (
    (snapshot as { children?: Record<string, ActorLike | undefined> } | undefined)?.children ?? {}
  );
}

/** Sends to a child made before the step stopped it: they never reach a run started later. */
const toEarlierRun = new WeakSet<object>();

function collect(
  action: ExecutableAction,
  data: StepData,
  effects: StepEffects,
  self: InstanceSelf,
): void {
  const params = action.params ?? {};
  switch (action.type) {
    case "xstate.raise": {
      // Without a delay, v5 has already processed the raised event inside this macrostep.
      if (typeof params.delay === "number")
        sendToSelf(data, toEvent(params.event), params.delay, params.id);
      return;
    }
    case "xstate.cancel":
      if (typeof params.sendId === "string") cancelDelayed(data, effects, params.sendId);
      return;
    case "xstate.spawnChild": {
      const ref = params.actorRef as ActorLike | undefined;
      const id = typeof params.id === "string" ? params.id : ref?.id;
      if (!ref || !id) return;
      // An entry action's send to a child its state invokes comes before the invoke's start
      // among the actions, yet XState delivers it to that new child (the send is resolved once
      // the state's invokes are spawned): unless the step stopped a run of that id since, such a
      // send goes to the run started here.
      for (const message of effects.serviceMessages)
        if (message.serviceId === id && !toEarlierRun.has(message)) message.toNewRun = true;
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
      if (typeof id !== "string") return;
      // A child this same step spawned is stopped before it ever ran, as XState stops it before
      // it can answer: it is not started (a later spawn under the id starts afresh).
      effects.services = effects.services.filter((service) => service.id !== id);
      for (const message of effects.serviceMessages)
        if (message.serviceId === id) toEarlierRun.add(message);
      markSentBeforeStop(effects, id);
      data.servicesStopped.push(id);
      return;
    }
    case "xstate.sendTo": {
      const target = params.to as { id?: unknown } | undefined;
      const stepSelf = (action.info as { self?: unknown } | undefined)?.self;
      // XState resolves a send to the machine's own actor (`self`, "#_internal") to the very ref
      // the action's arguments carry: no child, but the instance itself.
      if (target !== undefined && target === stepSelf) {
        sendToSelf(data, toEvent(params.event), params.delay, params.id);
      } else if (target && typeof target.id === "string") {
        // The instance's own ref in the event (`sender: self`) is for the child to answer to.
        const event = markingInstanceRef(toEvent(params.event), stepSelf);
        queueServiceMessage(effects, serviceMessage(target.id, event, params.delay, params.id));
      }
      return;
    }
    default:
      if (action.exec) {
        const exec = action.exec;
        // The step's own `self`, not the scope's actor the step was computed with (instance-self.ts).
        const info = { ...(action.info as object), self: self.ref };
        effects.actions.push(() => exec(info, action.params));
      }
  }
}

function startActor(
  ref: ActorLike,
  id: string,
  input: unknown,
  report: (event: MachineEvent, final: boolean) => void,
) {
  const parent = relayingParent(ref, id, report);
  // An invoke with onSnapshot (or a spawn with syncSnapshot): the child sends its parent each
  // snapshot it takes while active, as `xstate.snapshot.<id>`.
  const syncSnapshot = ref.options?.syncSnapshot === true;
  const actor = new ref.constructor(ref.logic, { id, input, parent, syncSnapshot });
  // Stopping completes the actor too: that is no result to report.
  let stopped = false;
  actor.subscribe({
    complete: () => !stopped && report(doneEvent(id, actor.getSnapshot().output), true),
    error: (error) => !stopped && report(errorEvent(id, error), true),
  });
  actor.start();
  return {
    stop: () => {
      stopped = true;
      actor._stop();
      parent.stop();
    },
    // An answer to the instance's own ref the event carried goes to the stand-in parent.
    send: (event: MachineEvent) => actor.send(addressedToParent(event, parent)),
  };
}

/**
 * The parent a service's actor sends to (a callback's `sendBack`, a child machine's
 * `sendParent`, and the child's answer to the instance's own ref it was sent: v5-sender-self.ts):
 * a stand-in that reports each event to the instance, the service running on
 * (not final). Not relayed: the child's own done and error events, which XState sends its parent
 * too (its subscription above reports them, as final), and the stand-in's own stop.
 */
function relayingParent(
  ref: ActorLike,
  id: string,
  report: (event: MachineEvent, final: boolean) => void,
): RunnableActor {
  const notRelayed = [`xstate.done.actor.${id}`, `xstate.error.actor.${id}`, "xstate.stop"];
  const logic = {
    transition: (snapshot: unknown, event: unknown) => {
      const type = (event as { type?: unknown } | null)?.type;
      if (typeof type === "string" && !notRelayed.includes(type)) {
        // An event that is not JSON cannot reach the instance: it is dropped, the relay goes on.
        const safe = toJsonSafe(event) as { type?: unknown } | null;
        if (typeof safe?.type === "string") report(toEvent(safe), false);
      }
      return snapshot;
    },
    getInitialSnapshot: () => ({ status: "active", output: undefined, error: undefined }),
    getPersistedSnapshot: (snapshot: unknown) => snapshot,
  };
  const parent = new ref.constructor(logic, { id: `${id}.parent` });
  parent.start();
  return parent;
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
