// What a step's custom actions get as `self` (XState 5). A step is computed apart from any running
// actor, in a scope whose actor is shared by every instance of the machine and never started:
// handed to actions, what they sent it would queue in its mailbox for as long as the version stays
// loaded (a leak any `({ self }) => self.send(…)` grows), and what one instance did to it another
// would see. Each step's actions get an object of their own instead, which keeps nothing: its
// sends go where the step's runner points them once the step executes (handler.ts: to the host,
// see self-sends.ts), and nowhere before.
//
// Its `id` and `sessionId` are those of the root actor `createActor(machine)` makes first in a
// process, "x:0" both (XState numbers sessions "x:<n>" from a counter of its module's, and an
// actor's id is its session's unless one is given): code that logs them, keeps them in its
// context or compares them gets the same string in every step of every instance, and in an
// assign, whose `self` is the shared actor, given the same ones (driver-v5.ts; not in a first
// step, whose assigns see XState's own throwaway actor). Not the instance's name, which the
// machine's actions are not otherwise told, nor the counter itself, which counts the actors of
// every instance of the version in the sandbox.

/** The `id` and `sessionId` of the instance's own actor, as machine code sees them. */
export const ROOT_ACTOR_ID = "x:0";

/** Takes what an action sent its instance; the event is machine code's, not yet checked. */
export type SelfSendSink = (event: unknown) => void;

export type InstanceSelf = {
  /** The object the step's custom actions see as `self`. */
  readonly ref: object;
  /** From now on, the ref's sends go to `sink`. */
  connect(sink: SelfSendSink): void;
};

/**
 * The `self` of one step's actions. `snapshot` is what its `getSnapshot()` answers: the
 * instance's state as XState 5's actor shows it to the step's actions (see driver-v5.ts).
 * `system` is the one the step's actions get as their own `system` argument, which XState's actor
 * carries as `self.system` too (`self.system.get(systemId)`).
 */
export function instanceSelf(snapshot: unknown, system?: unknown): InstanceSelf {
  let sink: SelfSendSink | undefined;
  // Frozen, and holding only these: nothing one action puts on it outlives its step's objects.
  const ref = Object.freeze({
    id: ROOT_ACTOR_ID,
    sessionId: ROOT_ACTOR_ID,
    send: (event: unknown): void => sink?.(event),
    getSnapshot: (): unknown => snapshot,
    system,
  });
  return {
    ref,
    connect: (next) => {
      sink = next;
    },
  };
}

/** What a subscription of the shared actor answers: there is nothing to end. */
const NO_SUBSCRIPTION = Object.freeze({ unsubscribe: (): void => {} });

/**
 * Makes the actor a machine's steps are computed with (shared by all its instances, never started)
 * keep nothing machine code hands it then, in an assign or an enqueueActions callback: an event
 * sent to it would queue in its mailbox, never drained; an observer, an emitted-event listener or
 * a system inspector would stay in its sets; each for as long as the version stays loaded, a leak
 * one line of machine code grows with every step. Sends are dropped, and the rest answer a
 * subscription that ends nothing. XState never subscribes to the actor itself while it computes
 * a step (the step's children are not started there).
 */
export function keepNothingOn(actor: object): void {
  const members = actor as Record<string, unknown>;
  members._send = () => {};
  members.subscribe = () => NO_SUBSCRIPTION;
  members.on = () => NO_SUBSCRIPTION;
  const system = members.system as Record<string, unknown> | undefined;
  if (system !== undefined) system.inspect = () => NO_SUBSCRIPTION;
}
