// XState 5's request/response pattern between an instance and its child: the instance sends the
// child an event that carries its own ref (`sendTo("worker", ({ self }) => ({ type: "ping",
// sender: self }))`), and the child answers to it (`sendTo(({ event }) => event.sender, …)`). The
// `self` a step resolves there is the actor the machine's steps are computed with, shared by every
// instance and never started (driver-v5.ts), which keeps nothing sent to it (instance-self.ts):
// the child's answer was lost. The child runs in the sandbox with a stand-in parent that reports
// what it is sent to its instance (driver-v5.ts, relayingParent), the way `sendParent` reaches the
// instance: where the event held the step's `self`, the child gets that stand-in instead.
//
// The ref is looked for in the event's own fields (`sender`, `replyTo`, …) and in the plain
// objects and arrays nested in them (`meta: { sender: self }`, `replyTo: [self]`), at most
// MAX_DEPTH levels below the event and MAX_NESTED_FIELDS nested fields in all: machine code
// cannot make the search cost more than that (a container past either limit is handed on as it
// is, and a ref in it gives the child no stand-in). Only plain objects and arrays are looked into;
// class instances, other actors' refs and anything else are handed on as they are. Each field is
// read once (a getter of machine code's could answer differently the second time), and each
// container is looked into only when all its fields fit in what is left of the budget, counted
// before any is read; the first that does not ends the search. The ref is marked when the step
// is computed, by identity with the step's own `self`, on copies of the containers on the way to
// it (their own enumerable fields: all a literal has; the rest of the event is the machine's own
// objects), and the mark is replaced by the child's stand-in when the copy is delivered to the
// running child, at once or after a delay (services.ts hands both to the run's `send`). Machine
// code cannot make a ref this way: a hand-written look-alike (`{ xstate$$type: 1, id }`) is not
// the step's `self`, so it reaches the child as the plain object it is; only the copies made here
// are looked into at delivery (each anew: the child gets fresh objects, never a marked copy), and
// their mark is an object of this module's that machine code never holds. Were a child ever
// handed such a copy, it would get its own stand-in, which reports to the instance that sent it:
// what its `sendParent` does anyway.
import type { MachineEvent } from "../adapter-protocol.js";

/** Where the instance's own ref stood in an event bound for one of its children. */
const INSTANCE_REF = Object.freeze({});

/** How many levels of plain objects and arrays below the event are looked into. */
export const MAX_DEPTH = 4;

/** How many fields of nested objects and arrays are read, in all, for one event. */
export const MAX_NESTED_FIELDS = 256;

/** The copies markingInstanceRef made: the only objects delivery looks into. */
const marked = new WeakSet<object>();

/**
 * The event a step sends a child, with each field that holds the step's `self` marked for the
 * child's stand-in parent, at the top level or nested (within the limits above). The event itself
 * when none does (machine code's own object, as before); a copy otherwise, so no object machine
 * code holds ever carries the mark.
 */
export function markingInstanceRef(event: MachineEvent, stepSelf: unknown): MachineEvent {
  if (stepSelf === undefined) return event;
  // The event's own fields are all read, as they always were; the budget is for nested ones.
  const budget = { fields: MAX_NESTED_FIELDS };
  const copied = copyMarking(Object.entries(event), stepSelf, 1, budget);
  return copied === undefined ? event : (plainObject(copied, false) as MachineEvent);
}

/**
 * `value`, or a marked copy of it when it holds the step's `self` (INSTANCE_REF when it is it).
 * `depth`: how many levels below the event `value` is, as a field of its container.
 */
function marking(value: unknown, stepSelf: unknown, depth: number, budget: Budget): unknown {
  if (value === stepSelf) return INSTANCE_REF;
  if (depth > MAX_DEPTH || typeof value !== "object" || value === null) return value;
  // Nothing more is read once the budget is spent (not even a container's size).
  if (budget.fields === 0) return value;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (Array.isArray(value) && prototype === Array.prototype) {
    const length: unknown = (value as unknown[]).length;
    if (!spend(budget, length)) return value;
    const items: Array<[string, unknown]> = [];
    for (let i = 0; i < length; i++) items.push([String(i), (value as unknown[])[i]]);
    const copied = copyMarking(items, stepSelf, depth + 1, budget);
    if (copied === undefined) return value;
    const copy = copied.map(([, item]) => item);
    marked.add(copy);
    return copy;
  }
  if (prototype !== Object.prototype && prototype !== null) return value;
  const names = Object.keys(value);
  if (!spend(budget, names.length)) return value;
  const fields = names.map((name): [string, unknown] => [
    name,
    (value as Record<string, unknown>)[name],
  ]);
  const copied = copyMarking(fields, stepSelf, depth + 1, budget);
  return copied === undefined ? value : plainObject(copied, prototype === null);
}

type Budget = { fields: number };

/**
 * Takes `count` fields from the budget, if it has them all; if not, the search ends there (what
 * is left is spent): a container too big to look into is counted once, not again each time it
 * is met, however often the event holds it.
 */
function spend(budget: Budget, count: unknown): count is number {
  if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > budget.fields) {
    budget.fields = 0;
    return false;
  }
  budget.fields -= count;
  return true;
}

/**
 * The fields, read already, each marked as `marking` makes it; undefined when none held the
 * step's `self` (then the container is handed on as machine code made it).
 */
function copyMarking(
  fields: Array<[string, unknown]>,
  stepSelf: unknown,
  depth: number,
  budget: Budget,
): Array<[string, unknown]> | undefined {
  let changed = false;
  const copied = fields.map(([key, value]): [string, unknown] => {
    const next = marking(value, stepSelf, depth, budget);
    if (next !== value) changed = true;
    return [key, next];
  });
  return changed ? copied : undefined;
}

/** A marked copy of a plain object: its fields as data (`__proto__` too), its prototype kept. */
function plainObject(fields: Array<[string, unknown]>, nullPrototype: boolean): object {
  const copy: object = Object.fromEntries(fields);
  if (nullPrototype) Object.setPrototypeOf(copy, null);
  marked.add(copy);
  return copy;
}

/**
 * The event as the running child gets it: each field marked by markingInstanceRef, at any depth,
 * holds `parent`, the child's stand-in parent that reports what it is sent to the instance.
 */
export function addressedToParent(event: MachineEvent, parent: object): MachineEvent {
  // Machine code's own events are handed on untouched (not even read: a getter runs once, in
  // the child); a marked copy is this module's, plain data.
  if (!marked.has(event)) return event;
  return addressed(event, parent) as MachineEvent;
}

/** A marked copy made anew with `parent` for its marks; anything else as it is. */
function addressed(value: unknown, parent: object): unknown {
  if (value === INSTANCE_REF) return parent;
  // Only this module's copies are looked into: plain data, at most MAX_DEPTH deep, no cycles.
  if (typeof value !== "object" || value === null || !marked.has(value)) return value;
  if (Array.isArray(value)) return value.map((item) => addressed(item, parent));
  const copy: object = Object.fromEntries(
    Object.entries(value).map(([key, field]) => [key, addressed(field, parent)]),
  );
  if (Object.getPrototypeOf(value) === null) Object.setPrototypeOf(copy, null);
  return copy;
}
