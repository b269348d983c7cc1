// A store whose chosen writes wait until the test lets them go: a busy database, for tests of
// what happens while a step waits for its commit (or a version for its store write), held
// exactly as long as the test needs (a fixed delay is too short on a loaded machine and
// needlessly long on an idle one).
import type { Store } from "../../src/store/store.js";
import { overriding } from "./overriding-store.js";

type HeldMethod = "commitTransition" | "createMachineVersion";
type Written<M extends HeldMethod> = Parameters<Store[M]>[0];

export type WriteHold = {
  /** Resolves once a write the hold picked is waiting. */
  reached: Promise<void>;
  /** Lets the waiting writes go on; later ones are no longer held. */
  release(): void;
};

type ActiveHold = {
  method: HeldMethod;
  pick: (written: never) => boolean;
  arrive(): void;
  released: Promise<void>;
};

export class StoreHolds {
  readonly #active = new Set<ActiveHold>();

  /** `store`, with each write that an active hold picks waiting for that hold's release. */
  wrap(store: Store): Store {
    return overriding(store, {
      commitTransition: async (commit) => {
        await this.#pass("commitTransition", commit);
        return store.commitTransition(commit);
      },
      createMachineVersion: async (version, makeCurrent) => {
        await this.#pass("createMachineVersion", version);
        return store.createMachineVersion(version, makeCurrent);
      },
    });
  }

  /** Holds the writes of `method` that `pick` chooses, from now until the hold is released. */
  hold<M extends HeldMethod>(method: M, pick: (written: Written<M>) => boolean): WriteHold {
    let arrive!: () => void;
    const reached = new Promise<void>((resolve) => (arrive = resolve));
    let letGo!: () => void;
    const released = new Promise<void>((resolve) => (letGo = resolve));
    const hold: ActiveHold = { method, pick, arrive, released };
    this.#active.add(hold);
    return {
      reached,
      release: () => {
        this.#active.delete(hold);
        letGo();
      },
    };
  }

  async #pass<M extends HeldMethod>(method: M, written: Written<M>): Promise<void> {
    for (const hold of this.#active) {
      if (hold.method !== method || !(hold.pick as (written: Written<M>) => boolean)(written)) {
        continue;
      }
      hold.arrive();
      await hold.released;
    }
  }
}
