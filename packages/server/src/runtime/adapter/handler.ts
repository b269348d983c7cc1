// The adapter's request handler: one per machine version per sandbox. It answers the engine's
// requests (see adapter-protocol.ts) and holds each step's effects until the engine reports the
// step committed, so nothing observable happens for a transition that was never stored.
import type {
  AdapterNotification,
  CreateRequest,
  DiscardRequest,
  ExecuteRequest,
  InspectResult,
  ReadRequest,
  ReadResponse,
  SendBatchRequest,
  SendBatchResponse,
  SendRequest,
  Step,
  StepResponse,
  StopServicesRequest,
} from "../adapter-protocol.js";
import { authorize } from "./authorize.js";
import { freezeIntrinsics, guardIntrinsics } from "./intrinsics-guard.js";
import type { DriverStep, MachineDriver, StepEffects } from "./driver.js";
import { createV4Driver } from "./driver-v4.js";
import { isV4Machine } from "./v4-step.js";
import { createV5Driver, isV5Machine } from "./driver-v5.js";
import { findNonJson, utf8Length } from "../json-check.js";
import { ServiceRegistry } from "./services.js";
import { runEffects } from "./run-effects.js";
import { selfSendsToInstance } from "./self-sends.js";
import { UNLOADABLE_OP } from "../sandbox/protocol.js";

/** Effects not executed or discarded within this time are dropped (the engine died or gave up). */
const STASH_TTL_MS = 120_000;

type Stashed = { effects: StepEffects; servicesStopped: string[]; at: number };

export function createHandler(
  namespace: Record<string, unknown>,
  notify: (notification: AdapterNotification) => void,
): (op: string, payload: string) => string {
  const driver = pickDriver(namespace.default);
  const services = new ServiceRegistry(notify);
  const stash = new Map<string, Stashed>();
  let nextStepId = 0;
  // Step ids name this handler too: an execute that reached another sandbox (or another
  // version's handler) must find nothing rather than somebody else's step.
  const stepPrefix = `step-${Math.random().toString(36).slice(2)}-`;

  const toResponse = (run: () => DriverStep, maxContextBytes?: number): StepResponse => {
    let step: DriverStep;
    try {
      step = run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { outcome: "failed", failure: { code: "machine-error", message } };
    }
    const problem = findNonJson(step.data.persisted.context);
    if (problem) {
      return { outcome: "failed", failure: { code: "not-json-serializable", message: problem } };
    }
    const context = step.data.persisted.context as { public?: unknown } | undefined;
    const contextBytes = utf8Length(JSON.stringify(context ?? {}));
    if (maxContextBytes !== undefined && contextBytes > maxContextBytes) {
      const message = `the context would be ${contextBytes} bytes as JSON; the limit is ${maxContextBytes}`;
      return { outcome: "failed", failure: { code: "context-too-large", message } };
    }
    nextStepId += 1;
    const stepId = `${stepPrefix}${nextStepId}`;
    // A cancel is an effect only when a delayed send to a child it may reach waits here, or in
    // a step not yet executed; else (most cancels are of durable timers) it costs no round trip.
    const reachable = (id: string) => services.hasDelayed(id) || stashedSend(stash, id);
    step.effects.cancels = step.effects.cancels.filter(reachable);
    const effectsPending = hasEffects(step);
    if (effectsPending) {
      sweep(stash);
      stash.set(stepId, {
        effects: step.effects,
        servicesStopped: step.data.servicesStopped,
        at: Date.now(),
      });
    }
    const { persisted, tags, done, timers, cancels, detaches, servicesStopped, selfEvents } =
      step.data;
    return {
      outcome: "step",
      step: {
        stepId,
        effectsPending,
        snapshot: persisted as never,
        value: persisted.value,
        tags,
        done,
        publicContext: context?.public as never,
        contextBytes,
        timers,
        cancels,
        detaches,
        servicesStarted: step.effects.services.map((s) => s.id),
        servicesStopped,
        selfEvents,
      },
    };
  };

  const send = (request: SendRequest): StepResponse => {
    if (request.authContext !== undefined) {
      const { value, context } = driver.view(request.snapshot);
      const decision = authorize(namespace.allowWrite, "allowWrite", {
        type: "event",
        machineInstanceName: request.instanceName,
        state: value,
        context,
        event: request.event,
        authContext: request.authContext,
      });
      if (!decision.allowed) return { outcome: "denied", reason: decision.reason };
    }
    return toResponse(
      () => driver.transition(request.snapshot, request.event, request.timerKey),
      request.maxContextBytes,
    );
  };

  const handlers: Record<string, (request: never) => unknown> = {
    inspect: (): InspectResult => ({
      xstateVersion: driver.xstateVersion,
      machineId: driver.machineId,
      hasAllowRead: typeof namespace.allowRead === "function",
      hasAllowWrite: typeof namespace.allowWrite === "function",
    }),
    create: (request: CreateRequest): StepResponse => {
      if (request.authContext !== undefined) {
        const decision = authorize(namespace.allowWrite, "allowWrite", {
          type: "initialization",
          machineInstanceName: request.instanceName,
          context: request.context,
          authContext: request.authContext,
        });
        if (!decision.allowed) return { outcome: "denied", reason: decision.reason };
      }
      return toResponse(() => driver.initial(request.context), request.maxContextBytes);
    },
    send: (request: SendRequest): StepResponse => send(request),
    "send-batch": (request: SendBatchRequest): SendBatchResponse => {
      let snapshot = request.snapshot;
      const results: StepResponse[] = [];
      for (const { event, authContext } of request.events) {
        const result = send({
          instanceName: request.instanceName,
          snapshot,
          event,
          authContext,
          maxContextBytes: request.maxContextBytes,
        });
        results.push(result);
        if (result.outcome !== "step") continue;
        snapshot = result.step.snapshot;
        if (result.step.selfEvents.length > 0) break;
      }
      return { results };
    },
    read: (request: ReadRequest): ReadResponse => {
      const { value, context } = driver.view(request.snapshot);
      const decision = authorize(namespace.allowRead, "allowRead", {
        machineInstanceName: request.instanceName,
        state: value,
        context,
        authContext: request.authContext,
      });
      return decision.allowed ? { allowed: true } : { allowed: false, reason: decision.reason };
    },
    execute: (request: ExecuteRequest) => {
      const stashed = stash.get(request.stepId);
      if (!stashed) return { executed: false };
      stash.delete(request.stepId);
      stashed.effects.self?.connect(
        selfSendsToInstance(notify, request.instanceRef, request.stepId),
      );
      runEffects(
        stashed.effects,
        stashed.servicesStopped,
        request.instanceRef,
        request.stepId,
        services,
        (err) => {
          // The transition is committed; a failing action cannot undo it. Report it in the logs.
          const message = err instanceof Error ? err.message : String(err);
          notify({ type: "log", level: "error", message: `action failed: ${message}` });
          return true;
        },
      );
      return { executed: true };
    },
    discard: (request: DiscardRequest) => ({ discarded: stash.delete(request.stepId) }),
    "stop-services": (request: StopServicesRequest) => {
      for (const id of request.serviceIds) services.stop(request.instanceRef, id);
      return {};
    },
    // Whether the sandbox may drop this version: nothing of it may be waiting or running here.
    // Steps whose execute or discard never came (their engine gave up) stop counting at the TTL.
    [UNLOADABLE_OP]: () => {
      expire(stash);
      return stash.size === 0 && services.idle;
    },
  };

  // Taken after the bundle's own top-level code ran: that is the version's baseline.
  freezeIntrinsics();
  const intrinsics = guardIntrinsics();
  const undoTampering = (when: string): string[] => {
    const changed = intrinsics.restore();
    if (changed.length > 0) {
      notify({
        type: "log",
        level: "warn",
        message: `machine code changed built-ins ${when} (${changed.join(", ")}); undone`,
      });
    }
    return changed;
  };

  /**
   * The answer with allowRead's decision for each of the request's readers on the state each of
   * its steps left (Step.readable). Asked on the answer as sent, parsed again, with a fresh copy
   * of that state and of the reader per question: what a read of the stored instance would see.
   * Machine code holds no reference into it, so no authorizer can change the step that is
   * committed. An authorizer that throws denies its reader; one that tampers with built-ins
   * denies every reader, as a read of its own would have. Neither fails the event.
   */
  const withReads = (request: { instanceName?: unknown; readers?: unknown }, result: string) => {
    const { readers } = request;
    if (!Array.isArray(readers) || readers.length === 0) return result;
    const answer = JSON.parse(result) as unknown;
    const steps = stepsOf(answer);
    if (steps.length === 0) return result;
    const readerJson = readers.map((reader) => JSON.stringify(reader));
    for (const step of steps) {
      const stateJson = JSON.stringify(driver.view(step.snapshot));
      step.readable = readerJson.map((authContextJson) => {
        try {
          const { value, context } = JSON.parse(stateJson) as { value: unknown; context: unknown };
          return authorize(namespace.allowRead, "allowRead", {
            machineInstanceName: request.instanceName,
            state: value,
            context,
            authContext: JSON.parse(authContextJson) as unknown,
          }).allowed;
        } catch {
          return false;
        }
      });
    }
    if (undoTampering("in allowRead").length > 0) {
      for (const step of steps) step.readable = readers.map(() => false);
    }
    return JSON.stringify(answer);
  };

  return (op, payload) => {
    const handle = handlers[op];
    if (!handle) throw new Error(`unknown adapter op ${op}`);
    // Services run between requests and may have tampered meanwhile.
    undoTampering("between requests");
    const firstNewStep = nextStepId + 1;
    const request = JSON.parse(payload) as Record<string, unknown>;
    const result = JSON.stringify(handle(request as never) ?? null);
    const changed = undoTampering(`during ${op}`);
    if (changed.length > 0) {
      // The answer was computed with tampered built-ins: refuse it, and drop its effects.
      for (let id = firstNewStep; id <= nextStepId; id++) stash.delete(`${stepPrefix}${id}`);
      throw new Error(
        `machine code changed built-in objects (${changed.join(", ")}); the change was undone`,
      );
    }
    return op === "send" || op === "send-batch" ? withReads(request, result) : result;
  };
}

/** The steps of a send or send-batch answer. */
function stepsOf(answer: unknown): Step[] {
  const responses = (answer as Partial<SendBatchResponse>).results ?? [answer as StepResponse];
  return responses.flatMap((response) => (response.outcome === "step" ? [response.step] : []));
}

function pickDriver(machine: unknown): MachineDriver {
  // v5 machines carry `__xstatenode` too, so the v5 test must come first.
  if (isV5Machine(machine)) return createV5Driver(machine);
  if (isV4Machine(machine)) return createV4Driver(machine);
  throw new Error("the bundle's default export is not an XState v4 or v5 machine");
}

/** Whether a step waiting for its commit holds a delayed send to a child under `sendId`. */
function stashedSend(stash: Map<string, Stashed>, sendId: string): boolean {
  for (const { effects } of stash.values()) {
    if (effects.serviceMessages.some((message) => message.sendId === sendId)) return true;
  }
  return false;
}

function hasEffects(step: DriverStep): boolean {
  const { actions, services, serviceMessages, cancels } = step.effects;
  return (
    actions.length > 0 ||
    services.length > 0 ||
    serviceMessages.length > 0 ||
    cancels.length > 0 ||
    step.data.servicesStopped.length > 0
  );
}

function sweep(stash: Map<string, Stashed>): void {
  if (stash.size < 256) return;
  expire(stash);
}

function expire(stash: Map<string, Stashed>): void {
  const cutoff = Date.now() - STASH_TTL_MS;
  for (const [id, entry] of stash) if (entry.at < cutoff) stash.delete(id);
}
