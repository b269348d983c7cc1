// A store whose chosen commits wait until the test lets them go: a busy database, for tests of
// what happens while a step waits for its commit, held exactly as long as the test needs
// (a fixed delay is too short on a loaded machine and needlessly long on an idle one).
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { overriding } from "./overriding-store.js";

export type CommitHold = {
  /** Resolves once a commit the hold picked is waiting. */
  reached: Promise<void>;
  /** Lets the waiting commits go on; later ones are no longer held. */
  release(): void;
};

type ActiveHold = {
  pick: (commit: TransitionCommit) => boolean;
  arrive(): void;
  released: Promise<void>;
};

export class CommitHolds {
  readonly #active = new Set<ActiveHold>();

  /** `store`, with each commit that an active hold picks waiting for that hold's release. */
  wrap(store: Store): Store {
    return overriding(store, {
      commitTransition: async (commit: TransitionCommit) => {
        for (const hold of this.#active) {
          if (!hold.pick(commit)) continue;
          hold.arrive();
          await hold.released;
        }
        return store.commitTransition(commit);
      },
    });
  }

  /** Holds the commits `pick` chooses, from now until the hold is released. */
  hold(pick: (commit: TransitionCommit) => boolean): CommitHold {
    let arrive!: () => void;
    const reached = new Promise<void>((resolve) => (arrive = resolve));
    let letGo!: () => void;
    const released = new Promise<void>((resolve) => (letGo = resolve));
    const hold: ActiveHold = { pick, arrive, released };
    this.#active.add(hold);
    return {
      reached,
      release: () => {
        this.#active.delete(hold);
        letGo();
      },
    };
  }
}
