// Children of an XState 5 machine spawned from inline logic (`spawnChild(fromPromise(…))`, or
// `spawn(fromPromise(…))` in an assign), which no name in the machine's `actors` refers to. XState
// persists a child as its `src`: for these the logic object itself, which JSON cannot keep (it
// becomes `{}`, or the snapshot cannot be written at all for a machine's cycles). An actor in
// memory never persists, so it runs them; the instance's next step, from the stored snapshot,
// failed on them, and so did every step after. Here such a child is stored under a name of the
// driver's own, revived as a stand-in: between steps the child runs in the sandbox (services.ts),
// and a step needs its ref only for its id (a send to it, its stop, its done event).
import type { AnyStateMachine } from "xstate";

/** The `src` a stored child spawned from inline logic goes by. */
export const INLINE_CHILD_SRC = "backstate.inline-child";

/** The same machine, which can revive children stored under INLINE_CHILD_SRC. */
export function revivingInlineChildren(machine: AnyStateMachine): AnyStateMachine {
  return machine.provide({ actors: { [INLINE_CHILD_SRC]: standIn } } as never);
}

/**
 * A persisted snapshot whose children spawned from inline logic go by INLINE_CHILD_SRC. Their
 * own snapshots are kept as they are: a stand-in neither reads nor changes them.
 */
export function withInlineChildrenNamed<T>(persisted: T): T {
  const children = (persisted as { children?: Record<string, { src?: unknown } | undefined> })
    .children;
  if (children === undefined) return persisted;
  for (const child of Object.values(children)) {
    if (child !== undefined && typeof child.src !== "string") child.src = INLINE_CHILD_SRC;
  }
  return persisted;
}

/** Actor logic that keeps the snapshot it is given and takes no event. */
const standIn = {
  transition: (snapshot: unknown) => snapshot,
  getInitialSnapshot: () => ({ status: "active", output: undefined, error: undefined }),
  restoreSnapshot: (snapshot: unknown) => snapshot,
  getPersistedSnapshot: (snapshot: unknown) => snapshot,
};
