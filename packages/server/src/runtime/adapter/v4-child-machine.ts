// An XState 4 machine an instance invokes, run in the sandbox as XState 4's interpreter runs a
// child, until it ends or is stopped (its state left, the instance settled or out of time): its
// sendParent events are reported to the instance as it goes, events the instance sends it are
// its own, it ends with `done.invoke.<id>` and its final state's data, or with
// `error.platform.<id>` when it throws. Its delayed events, and its own invoked services, live in
// the sandbox with it: it is ephemeral.
//
// Why not XState 4's `interpret`: a v4 bundle brings its own XState 4, inlined at whatever minor
// version the CLI had (or "npm:xstate"), with no `interpret` the adapter could reach; one from
// another copy would drive this machine's States and actions across two XState copies whose
// internals differ by minor version. `machine.transition` is the surface the driver already runs
// every v4 instance on, so a child is stepped the same way, its actions told apart by the same
// code (v4-step.ts), and its effects run as the instance's are (run-effects.ts). It also keeps
// the child bounded: its self-sent events are taken a few at a time, its timers are counted, and
// everything it starts stops with it, where XState's interpreter loops on self-sends unbounded.
import type { MachineEvent } from "../adapter-protocol.js";
import { toJsonSafe } from "../json-check.js";
import { runEffects } from "./run-effects.js";
import { later, MAX_DELAY_MS, ServiceRegistry, unlater, type Running } from "./services.js";
import {
  autoForwarded,
  errorEvent,
  mappedData,
  toDriverStep,
  type V4Machine,
  type V4ServiceStart,
  type V4State,
} from "./v4-step.js";

type Later = ReturnType<typeof setTimeout>;

/** Steps taken in one go before the child yields to the sandbox (a child may ping itself forever). */
const STEPS_PER_TURN = 64;
/** Events a child may have waiting, and delayed events armed; past either, it fails. */
const MAX_QUEUED_EVENTS = 1_000;
const MAX_ARMED_TIMERS = 1_000;
/** The child's own services are kept under this one name in its private registry. */
const OWN = "child";

export function runV4ChildMachine(
  machine: V4Machine,
  id: string,
  report: (event: MachineEvent, final: boolean) => void,
  startService: V4ServiceStart,
): Running {
  let state: V4State;
  /** Done, failed or stopped: from then on it takes no event and reports nothing. */
  let over = false;
  const queue: MachineEvent[] = [];
  let draining = false;
  let resume: Later | undefined;
  /** Armed timers; by key, the latest under each (what a cancel reaches, as in XState 4). */
  const armed = new Set<Later>();
  const byKey = new Map<string, Later>();
  const services = new ServiceRegistry((notification) => {
    if (notification.type === "service-event") deliver(notification.event);
  });

  const end = () => {
    over = true;
    queue.length = 0;
    if (resume !== undefined) unlater(resume);
    for (const handle of armed) unlater(handle);
    armed.clear();
    byKey.clear();
    services.stopAll(OWN);
  };
  const fail = (error: unknown) => {
    if (over) return;
    end();
    report(errorEvent(id, error), true);
  };

  const arm = (key: string | undefined, delayMs: number, fire: () => void) => {
    if (armed.size >= MAX_ARMED_TIMERS)
      throw new RangeError(`the child machine armed more than ${MAX_ARMED_TIMERS} delayed events`);
    const handle = later(
      () => {
        armed.delete(handle);
        if (key !== undefined && byKey.get(key) === handle) byKey.delete(key);
        if (!over) fire();
      },
      Math.min(Math.max(delayMs, 0), MAX_DELAY_MS),
    );
    armed.add(handle);
    if (key !== undefined) byKey.set(key, handle);
  };
  const cancel = (key: string) => {
    const handle = byKey.get(key);
    if (handle === undefined) return;
    unlater(handle);
    armed.delete(handle);
    byKey.delete(key);
  };

  const toInstance = (event: MachineEvent) => {
    // An event that is not JSON cannot reach the instance: it is dropped, the child goes on.
    const safe = toJsonSafe(event) as { type?: unknown } | null;
    if (!over && typeof safe?.type === "string") report(safe as MachineEvent, false);
  };
  const toParent = (sent: MachineEvent, delay: unknown, sendId: unknown) => {
    // `escalate` sends its parent an `xstate.error`, which XState 4's interpreter delivers as
    // this child's `error.platform.<id>` (its data kept), so the invoke's onError takes it.
    const event = sent.type === "xstate.error" ? { ...sent, type: `error.platform.${id}` } : sent;
    // Kept under its id, as a delayed send to itself is: a cancel of that id reaches it.
    const key = typeof sendId === "string" ? sendId : undefined;
    if (typeof delay === "number") arm(key, delay, () => toInstance(event));
    else toInstance(event);
  };

  /** Runs the State's actions and effects, as XState 4's interpreter does on each update. */
  const apply = (next: V4State, forwarded?: MachineEvent) => {
    // Its autoForward children (those of the state it was in) get the event it took, first among
    // the messages, as the instance's get theirs (driver-v4.ts).
    const forwards =
      forwarded === undefined
        ? []
        : autoForwarded(state).map((serviceId) => ({ serviceId, event: forwarded }));
    state = next;
    const { data, effects } = toDriverStep(machine, next, next.actions, {
      startService,
      toParent,
      persist: false,
    });
    effects.serviceMessages.unshift(...forwards);
    // Cancels before the step's own delayed sends (as for an instance: a send after a cancel of
    // its id re-arms it), and so before the actions, which arm its delayed sends to the parent.
    for (const key of data.cancels) cancel(key);
    for (const key of data.detaches) byKey.delete(key);
    let threw = false;
    runEffects(effects, data.servicesStopped, OWN, id, services, (error) => {
      threw = true;
      fail(error);
      return false;
    });
    if (threw || over) return;
    for (const { key, delayMs, event, detached } of data.timers)
      arm(detached ? undefined : key, delayMs, () => deliver(event));
    if (queue.length + data.selfEvents.length > MAX_QUEUED_EVENTS)
      throw new RangeError(`the child machine queued more than ${MAX_QUEUED_EVENTS} events`);
    queue.push(...data.selfEvents);
    if (next.done) finish(next);
  };

  /** Its done event, with the data of the top-level final state it reached; then it is over. */
  const finish = (final: V4State) => {
    const node = final.configuration?.find(
      (candidate) => candidate.type === "final" && candidate.parent?.parent === undefined,
    );
    const doneData =
      node?.doneData === undefined
        ? undefined
        : mappedData(node.doneData, final.context, final.event);
    end();
    report({ type: `done.invoke.${id}`, data: toJsonSafe(doneData) } as MachineEvent, true);
  };

  const step = (event: MachineEvent) => {
    // XState 4's interpreter throws an error event its machine has no transition for at all.
    const nextEvents = state.nextEvents;
    if (
      event.type.startsWith("error.platform") &&
      Array.isArray(nextEvents) &&
      !nextEvents.some((type) => type.startsWith("error.platform"))
    ) {
      fail((event as { data?: unknown }).data);
      return;
    }
    apply(machine.transition(state, event), event);
  };

  /** Takes the waiting events in order, a turn's worth at a time. */
  const drain = () => {
    if (draining) return; // an event delivered while a step runs waits for the loop below
    draining = true;
    try {
      for (let steps = 0; !over && queue.length > 0; steps++) {
        if (steps === STEPS_PER_TURN) {
          resume = later(() => {
            resume = undefined;
            drain();
          }, 0);
          return;
        }
        try {
          step(queue.shift()!);
        } catch (error) {
          fail(error);
        }
      }
    } finally {
      draining = false;
    }
  };

  function deliver(event: MachineEvent): void {
    if (over) return;
    if (queue.length >= MAX_QUEUED_EVENTS) {
      fail(new RangeError(`the child machine has more than ${MAX_QUEUED_EVENTS} events waiting`));
      return;
    }
    queue.push(event);
    if (resume === undefined) drain();
  }

  // Reading the initial state runs no action; one that throws (an assign) fails the start.
  const initial = machine.initialState;
  try {
    draining = true;
    apply(initial);
  } catch (error) {
    fail(error);
  } finally {
    draining = false;
  }
  drain();
  return { stop: end, send: (event: MachineEvent) => deliver(event) };
}
