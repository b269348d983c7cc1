// A store whose commits of one kind are held back before they are written: a busy database, for
// tests of what happens while a step waits for its commit.
import type { Store, TransitionCommit } from "../../src/store/store.js";

/** `store`, with each commit that `slow` picks written only after `delayMs`. */
export function slowingCommits(
  store: Store,
  slow: (commit: TransitionCommit) => boolean,
  delayMs: number,
): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "commitTransition") {
        return async (commit: TransitionCommit) => {
          if (slow(commit)) await new Promise((resolve) => setTimeout(resolve, delayMs));
          return target.commitTransition(commit);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function"
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}
