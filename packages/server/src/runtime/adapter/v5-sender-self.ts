// XState 5's request/response pattern between an instance and its child: the instance sends the
// child an event that carries its own ref (`sendTo("worker", ({ self }) => ({ type: "ping",
// sender: self }))`), and the child answers to it (`sendTo(({ event }) => event.sender, …)`). The
// `self` a step resolves there is the actor the machine's steps are computed with, shared by every
// instance and never started (driver-v5.ts), which keeps nothing sent to it (instance-self.ts):
// the child's answer was lost. The child runs in the sandbox with a stand-in parent that reports
// what it is sent to its instance (driver-v5.ts, relayingParent), the way `sendParent` reaches the
// instance: where the event held the step's `self`, the child gets that stand-in instead.
//
// Only top-level fields, where the pattern puts the ref (`sender`, `replyTo`, …); one nested deeper
// is handed on as before. The field is marked when the step is computed, by identity with the
// step's own `self`, on a copy of the event's own fields (all an event literal has), and the mark
// is replaced by the child's stand-in when the copy is delivered to the running child, at once or
// after a delay (services.ts hands both to the run's `send`). The other fields stay as the machine
// made them. Machine code cannot make a ref this way: a hand-written look-alike (`{ xstate$$type:
// 1, id }`) is not the step's `self`, so it reaches the child as the plain object it is; only the
// copies made here are looked into at delivery, and their mark is an object of this module's that
// machine code never holds. Were a child ever handed such a copy, it would get its own stand-in,
// which reports to the instance that sent it: what its `sendParent` does anyway.
import type { MachineEvent } from "../adapter-protocol.js";

/** Where the instance's own ref stood in an event bound for one of its children. */
const INSTANCE_REF = Object.freeze({});

/** The copies markingInstanceRef made: the only events delivery looks into. */
const marked = new WeakSet<object>();

/**
 * The event a step sends a child, with each top-level field that holds the step's `self` marked
 * for the child's stand-in parent. The event itself when none does (machine code's own object, as
 * before); a copy otherwise, so no object machine code holds ever carries the mark.
 */
export function markingInstanceRef(event: MachineEvent, stepSelf: unknown): MachineEvent {
  if (stepSelf === undefined) return event;
  // Read once: a getter of machine code's could answer differently the second time.
  const fields = Object.entries(event);
  if (!fields.some(([, value]) => value === stepSelf)) return event;
  const copy = Object.fromEntries(
    fields.map(([key, value]) => [key, value === stepSelf ? INSTANCE_REF : value]),
  ) as MachineEvent;
  marked.add(copy);
  return copy;
}

/**
 * The event as the running child gets it: each field marked by markingInstanceRef holds `parent`,
 * the child's stand-in parent that reports what it is sent to the instance.
 */
export function addressedToParent(event: MachineEvent, parent: object): MachineEvent {
  // Machine code's own events are handed on untouched (not even read: a getter runs once, in
  // the child); a marked copy is this module's, plain data.
  if (!marked.has(event)) return event;
  const fields = Object.entries(event).map(([key, value]) => [
    key,
    value === INSTANCE_REF ? parent : value,
  ]);
  return Object.fromEntries(fields) as MachineEvent;
}
