// Input checks at the engine's edge: names, events and contexts, each refused with a coded error
// before anything runs or changes.
import { InvalidParameterError } from "../errors.js";
import type { JsonObject, MachineEvent } from "../runtime/adapter-protocol.js";
import { findNonJson } from "../runtime/json-check.js";

const NAME = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Event types the runtime itself produces (timers, service results, upgrades). A client sending
 * one could fire a timer early or fake a service result, so they are refused from outside.
 */
const RESERVED_EVENT_PREFIXES = ["xstate.", "statebacked."];
/**
 * XState v4's own event families outside `xstate.` (its ActionTypes): a service's result
 * (`done.invoke.<id>`), its error (`error.platform.<id>`), a final state reached (`done.state.<id>`),
 * an action that threw. Each is refused as itself or followed by a dot; any other type under
 * `done.` or `error.` (`done.reviewing`) is the machine's own, and a client may send it.
 */
const RESERVED_EVENT_FAMILIES = [
  "done.invoke",
  "done.state",
  "error.platform",
  "error.execution",
  "error.communication",
];

/** The key that marks XState 4's internal (SCXML) event records. */
const SCXML_MARK = "$$type";

function isReservedEventType(type: string): boolean {
  return (
    RESERVED_EVENT_PREFIXES.some((prefix) => type.startsWith(prefix)) ||
    RESERVED_EVENT_FAMILIES.some((family) => type === family || type.startsWith(`${family}.`))
  );
}

export function checkName(parameter: string, name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new InvalidParameterError(
      parameter,
      `${parameter} must be 1-128 characters of A-Z, a-z, 0-9, _ and -`,
    );
  }
  return name;
}

/** An external event: `"name"` or `{ type: "name", ...json }`. */
export function checkExternalEvent(event: unknown): MachineEvent {
  const normalized: unknown = typeof event === "string" ? { type: event } : event;
  if (!isPlainObject(normalized) || typeof normalized.type !== "string" || normalized.type === "") {
    throw new InvalidParameterError(
      "event",
      'event must be a string or an object with a string "type"',
    );
  }
  if (isReservedEventType(normalized.type)) {
    throw new InvalidParameterError(
      "event",
      `event type "${normalized.type}" is reserved for the runtime`,
    );
  }
  // XState 4 takes an object whose `$$type` is "scxml" for its own event record and matches
  // transitions on that record's `name`, not on `type`: such an event could pass for any event
  // above, and show allowWrite a harmless type meanwhile.
  if (Object.hasOwn(normalized, SCXML_MARK)) {
    throw new InvalidParameterError(
      "event",
      `event cannot carry "${SCXML_MARK}": XState 4 would take it for one of its own events`,
    );
  }
  const problem = findNonJson(normalized, "event");
  if (problem) throw new InvalidParameterError("event", `event must be JSON: ${problem}`);
  return normalized as MachineEvent;
}

/** The caller's initial context: a JSON object (default `{}`). */
export function checkInitialContext(context: unknown): JsonObject {
  if (context === undefined) return {};
  if (!isPlainObject(context))
    throw new InvalidParameterError("context", "context must be a JSON object");
  const problem = findNonJson(context);
  if (problem) throw new InvalidParameterError("context", `context must be JSON: ${problem}`);
  return context as JsonObject;
}

/** The authContext handed to authorizers: a JSON object. */
export function checkAuthContext(authContext: unknown): JsonObject {
  if (!isPlainObject(authContext))
    throw new InvalidParameterError("authContext", "authContext must be an object");
  const problem = findNonJson(authContext, "authContext");
  if (problem)
    throw new InvalidParameterError("authContext", `authContext must be JSON: ${problem}`);
  return authContext as JsonObject;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
