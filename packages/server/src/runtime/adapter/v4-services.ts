// What an XState 4 invoke runs, as XState 4's interpreter tells its sources apart: a promise, a
// callback, an observable or a machine, from the machine's service creator (or the source itself,
// as `invoke: { src: machine }` puts it there). Each reports its events to the instance (or, for a
// child machine's own services, to that child) through `report`, its end as final.
import type { MachineEvent } from "../adapter-protocol.js";
import { toJsonSafe } from "../json-check.js";
import { toEvent } from "./driver.js";
import type { Running } from "./services.js";
import { runV4ChildMachine } from "./v4-child-machine.js";
import {
  errorEvent,
  isV4Machine,
  mappedData,
  type V4Activity,
  type V4Machine,
  type V4State,
} from "./v4-step.js";

type Report = (event: MachineEvent, final: boolean) => void;

/**
 * Bounds on the child machines one invoke of an instance leads to, counting their own children:
 * how deep they may nest, and how many may run at once. Machine code is hostile: a machine whose
 * service creator returns itself would recurse until the stack overflowed, and one with parallel
 * regions that each do so would start children without end, all in the org's sandbox process.
 * A child past either bound fails to start, as XState reports any service that throws as it
 * starts: with `error.platform.<id>` to whoever invoked it.
 */
export const MAX_CHILD_MACHINE_DEPTH = 8;
export const MAX_LIVE_CHILD_MACHINES = 256;

/** The child machines under one invoke of an instance: its depth here, and the live count. */
type Tree = { depth: number; live: { count: number } };

/** Starts what an instance's invoke runs (a child machine's own invokes: see startInTree). */
export function startV4Service(
  machine: V4Machine,
  state: V4State,
  activity: V4Activity,
  report: Report,
): Running {
  return startInTree(machine, state, activity, report, { depth: 0, live: { count: 0 } });
}

function startInTree(
  machine: V4Machine,
  state: V4State,
  activity: V4Activity,
  report: Report,
  tree: Tree,
): Running {
  const srcType =
    typeof activity.src === "string" ? activity.src : (activity.src as { type?: string })?.type;
  const creator = srcType === undefined ? undefined : machine.options.services?.[srcType];
  if (typeof creator !== "function" && (typeof creator !== "object" || creator === null))
    throw new Error(`service "${String(srcType)}" is not implemented`);
  const data =
    activity.data === undefined ? undefined : mappedData(activity.data, state.context, state.event);
  const source: unknown =
    typeof creator === "function"
      ? (creator as (c: unknown, e: unknown, m: unknown) => unknown)(state.context, state.event, {
          data,
          src: activity.src,
          meta: activity.meta,
        })
      : creator;
  const id = activity.id;
  if (source && typeof (source as PromiseLike<unknown>).then === "function")
    return runPromise(source as PromiseLike<unknown>, id, report);
  if (typeof source === "function") return runCallback(source, id, report);
  if (source && typeof (source as Subscribable).subscribe === "function")
    return runObservable(source as Subscribable, id, report);
  if (isV4Machine(source)) {
    // As XState 4 starts it: the invoke's data, when it has any, is the child's whole context.
    const child = data ? source.withContext(data) : source;
    return runChildInTree(child, id, report, tree);
  }
  throw new Error(
    `service "${srcType}" returned neither a promise, a callback, an observable nor a machine`,
  );
}

/** Runs a child machine within its tree's bounds, counted as live until it ends or is stopped. */
function runChildInTree(child: V4Machine, id: string, report: Report, tree: Tree): Running {
  if (tree.depth >= MAX_CHILD_MACHINE_DEPTH) {
    throw new Error(`child machines nest deeper than ${MAX_CHILD_MACHINE_DEPTH}`);
  }
  if (tree.live.count >= MAX_LIVE_CHILD_MACHINES) {
    throw new Error(`more than ${MAX_LIVE_CHILD_MACHINES} child machines run under one invoke`);
  }
  tree.live.count++;
  let live = true;
  const ended = () => {
    if (live) tree.live.count--;
    live = false;
  };
  const below: Tree = { depth: tree.depth + 1, live: tree.live };
  let running: Running;
  try {
    running = runV4ChildMachine(
      child,
      id,
      (event, final) => {
        if (final) ended();
        report(event, final);
      },
      (machine, state, activity, reportUp) =>
        startInTree(machine, state, activity, reportUp, below),
    );
  } catch (error) {
    ended();
    throw error;
  }
  return {
    ...running,
    stop: () => {
      ended();
      running.stop();
    },
  };
}

function runPromise(source: PromiseLike<unknown>, id: string, report: Report): Running {
  let stopped = false;
  source.then(
    (value) =>
      !stopped &&
      report({ type: `done.invoke.${id}`, data: toJsonSafe(value) } as MachineEvent, true),
    (error: unknown) => !stopped && report(errorEvent(id, error), true),
  );
  return { stop: () => void (stopped = true) };
}

/**
 * A callback service: events it sends back go to the instance; it never "completes". Unless it
 * returns a promise (an async function): XState 4's interpreter then runs it as that promise, its
 * resolution `done.invoke.<id>`, its rejection `error.platform.<id>`.
 */
function runCallback(source: unknown, id: string, report: Report): Running {
  let stopped = false;
  const listeners: Array<(event: unknown) => void> = [];
  const cleanup: unknown = (source as (send: unknown, receive: unknown) => unknown)(
    (event: unknown) => !stopped && report(toEvent(event), false),
    (listener: (event: unknown) => void) => listeners.push(listener),
  );
  if (cleanup && typeof (cleanup as PromiseLike<unknown>).then === "function") {
    const promise = runPromise(cleanup as PromiseLike<unknown>, id, report);
    return {
      stop: () => {
        stopped = true;
        promise.stop();
      },
      send: (event: MachineEvent) => listeners.forEach((listener) => listener(event)),
    };
  }
  return {
    stop: () => {
      stopped = true;
      if (typeof cleanup === "function") (cleanup as () => void)();
    },
    send: (event: MachineEvent) => listeners.forEach((listener) => listener(event)),
  };
}

type Subscribable = {
  subscribe(
    next: (value: unknown) => void,
    error: (error: unknown) => void,
    complete: () => void,
  ): unknown;
};

/**
 * An observable, subscribed to as XState 4 does (three functions): each value is an event to the
 * instance, its completion `done.invoke.<id>` (with no data), its error `error.platform.<id>`;
 * the stop unsubscribes. A value that is not JSON cannot reach the instance and is dropped.
 */
function runObservable(source: Subscribable, id: string, report: Report): Running {
  let stopped = false;
  const subscription = source.subscribe(
    (value) => {
      if (stopped) return;
      const event = toJsonSafe(toEvent(value)) as { type?: unknown } | undefined;
      if (typeof event?.type === "string") report(event as MachineEvent, false);
    },
    (error) => !stopped && report(errorEvent(id, error), true),
    () => !stopped && report({ type: `done.invoke.${id}` }, true),
  );
  return {
    stop: () => {
      stopped = true;
      const unsubscribe = (subscription as { unsubscribe?: unknown } | null)?.unsubscribe;
      if (typeof unsubscribe === "function") (unsubscribe as () => void).call(subscription);
    },
  };
}
