// What a step's custom actions get as `self` (XState 5). A step is computed apart from any running
// actor, in a scope whose actor is shared by every instance of the machine and never started:
// handed to actions, what they sent it would queue in its mailbox for as long as the version stays
// loaded (a leak any `({ self }) => self.send(…)` grows), and what one instance did to it another
// would see. Each step's actions get an object of their own instead, which keeps nothing: its
// sends go where the step's runner points them once the step executes (see handler.ts), and
// nowhere before.

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
 */
export function instanceSelf(snapshot: unknown): InstanceSelf {
  let sink: SelfSendSink | undefined;
  // Frozen, and holding only these two: nothing one action puts on it outlives its step's objects.
  const ref = Object.freeze({
    send: (event: unknown): void => sink?.(event),
    getSnapshot: (): unknown => snapshot,
  });
  return {
    ref,
    connect: (next) => {
      sink = next;
    },
  };
}
