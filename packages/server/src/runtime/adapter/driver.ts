// What the adapter needs from a machine, whichever XState generation built it. Each driver turns
// a macrostep into a Step (data, committed by the engine) and the effects to run after the commit.
import type { JsonObject, JsonValue, MachineEvent, TimerEffect } from "../adapter-protocol.js";
import type { InstanceSelf } from "./instance-self.js";
import type { ServiceStarter } from "./services.js";

/** A service the step starts once executed. */
export type ServiceStart = {
  id: string;
  starter: ServiceStarter;
  failure: (error: unknown) => MachineEvent;
};

/** The effects of a step, held in the sandbox until the engine says the step is committed. */
export type StepEffects = {
  actions: Array<() => void>;
  services: ServiceStart[];
  /**
   * Events for running services of this instance (sendTo a child), each after `delayMs` if given:
   * a delay kept in this sandbox, as the child is (it dies with the sandbox either way).
   */
  serviceMessages: ServiceMessage[];
  /**
   * Ids of delayed events cancelled by the step: a delayed send to a child kept in the sandbox
   * (see serviceMessages) of the instance with that id must not be delivered.
   */
  cancels: string[];
  /**
   * The `self` the step's actions see, when the driver gives them one of their own: its runner
   * says where what they send it goes (instance-self.ts).
   */
  self?: InstanceSelf;
};

/**
 * `sendId`: the id a delayed send may be cancelled by. `toNewRun`: sent after a start of the
 * service in the same step, so it goes to the run that step starts (see queueServiceMessage).
 * `beforeStop`: sent before the step stops the service (see markSentBeforeStop).
 */
export type ServiceMessage = {
  serviceId: string;
  event: MachineEvent;
  delayMs?: number;
  sendId?: string;
  toNewRun?: true;
  beforeStop?: true;
};

/**
 * Queues an event for a service of the instance. XState runs a step's actions in order, so an
 * event sent after the step started the service (entered a state that invokes it, then raised
 * an event whose action sends to it) reaches that new run, as one sent to a service the step
 * leaves alone reaches the run that was there.
 */
export function queueServiceMessage(effects: StepEffects, message: ServiceMessage): void {
  if (effects.services.some((service) => service.id === message.serviceId)) message.toNewRun = true;
  effects.serviceMessages.push(message);
}

/**
 * The step stops service `serviceId`: the events sent to its running run so far in the step reach
 * it before it stops. An exit action's send to a child its state invokes is one: XState runs the
 * state's exit actions, then stops its children (in XState 4 the send is resolved to the child
 * before the stop, and reaches it too). A delayed one is left to its delay, which outlasts the run.
 */
export function markSentBeforeStop(effects: StepEffects, serviceId: string): void {
  for (const message of effects.serviceMessages) {
    if (message.serviceId === serviceId && !message.toNewRun && message.delayMs === undefined)
      message.beforeStop = true;
  }
}

/** A send to a child: after `delay` milliseconds if it is a number other than 0 (or NaN), else at once. */
export function serviceMessage(
  serviceId: string,
  event: MachineEvent,
  delay: unknown,
  id?: unknown,
): ServiceMessage {
  const delayMs = typeof delay === "number" ? delay : undefined;
  if (!delayMs) return { serviceId, event };
  return typeof id === "string"
    ? { serviceId, event, delayMs, sendId: id }
    : { serviceId, event, delayMs };
}

/**
 * A cancel of the delayed event `sendId`: a durable timer (the store's), or a send to a child kept
 * in the sandbox. The sandbox applies its cancels before its delayed sends, so one armed earlier
 * in this same macrostep (entry arms it, an eventless transition leaves the state and its exit
 * cancels it) is taken out here: it would otherwise be kept, and delivered.
 */
export function cancelDelayed(data: StepData, effects: StepEffects, sendId: string): void {
  cancelTimer(data, sendId);
  effects.serviceMessages = effects.serviceMessages.filter(
    (message) => message.delayMs === undefined || message.sendId !== sendId,
  );
  effects.cancels.push(sendId);
}

/**
 * An event the machine sends itself, as XState's actor delivers it: after `delay` milliseconds if
 * that is a number (a durable timer, kept under `id` if it is a string, so a cancel reaches it),
 * else once the macrostep that sent it ends (the engine steps it right after this step).
 */
export function sendToSelf(data: StepData, event: MachineEvent, delay: unknown, id: unknown): void {
  if (typeof delay === "number") {
    armTimer(data, typeof id === "string" ? id : generatedId(event.type), delay, event);
  } else data.selfEvents.push(event);
}

// XState's scheduler keeps every delayed event it is given, and under each id the last one
// scheduled: a cancel reaches that one only, and one scheduled before under the id still fires.
// A step's arms and cancels are folded here into what the store applies (cancels, then detaches,
// then timers in order: see store.ts, TimerToArm), which leaves the timers as applying the
// machine's own arms and cancels in turn would.

/** Arms a timer under `key`: the one a cancel of the key now reaches. */
function armTimer(data: StepData, key: string, delayMs: number, event: MachineEvent): void {
  for (const timer of data.timers) if (timer.key === key) timer.detached = true;
  data.timers.push({ key, delayMs, event });
}

/** Cancels the timer under `key` armed last, if no cancel or detach since has taken it. */
function cancelTimer(data: StepData, key: string): void {
  const index = data.timers.findLastIndex((timer) => timer.key === key && !timer.detached);
  // Not armed in this step: the stored timer the key reaches, unless this step let go of it.
  if (index < 0) {
    if (!letGoOfStored(data, key)) data.cancels.push(key);
    return;
  }
  data.timers.splice(index, 1);
  // That arm had let go of the stored timer under the key, if any: it stays armed, and now no
  // cancel reaches it (the store would take the next cancel of the key for it).
  detachTimer(data, key);
}

/**
 * The stored timer under `key` stays armed but no cancel reaches it any more: what XState 5's
 * scheduler does when a delayed event under the key is delivered (it forgets the id).
 */
export function detachTimer(data: StepData, key: string): void {
  if (!letGoOfStored(data, key)) data.detaches.push(key);
}

/** Whether the step already cancelled or detached the stored timer under `key`. */
function letGoOfStored(data: StepData, key: string): boolean {
  return data.cancels.includes(key) || data.detaches.includes(key);
}

/** The data half of a step, before the adapter adds its id and the JSON checks. */
export type StepData = {
  persisted: { value: JsonValue; context: unknown; [key: string]: unknown };
  tags: string[];
  done: boolean;
  timers: TimerEffect[];
  cancels: string[];
  detaches: string[];
  servicesStopped: string[];
  selfEvents: MachineEvent[];
};

export type DriverStep = { data: StepData; effects: StepEffects };

export interface MachineDriver {
  readonly xstateVersion: 4 | 5;
  readonly machineId: string;
  /** The first macrostep, with `context` shallow-merged over the machine's own initial context. */
  initial(context: JsonObject): DriverStep;
  /**
   * One macrostep from a persisted snapshot. `timerKey`: the send id of the delayed event this
   * event is the delivery of, if it is one.
   */
  transition(persisted: JsonValue, event: MachineEvent, timerKey?: string): DriverStep;
  /** State value and full context of a persisted snapshot, for the authorizers. */
  view(persisted: JsonValue): { value: JsonValue; context: unknown };
}

/** A string for ids the machine did not name (timers without an id). */
let counter = 0;
export function generatedId(prefix: string): string {
  counter += 1;
  return `${prefix}.${Date.now().toString(36)}.${counter.toString(36)}`;
}

/** Normalizes what machine code calls an event: a string or an object with a `type`. */
export function toEvent(event: unknown): MachineEvent {
  if (typeof event === "string") return { type: event };
  if (
    event &&
    typeof event === "object" &&
    typeof (event as { type?: unknown }).type === "string"
  ) {
    return event as MachineEvent;
  }
  return { type: String(event) };
}
