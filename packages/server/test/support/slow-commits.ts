// A store whose commits of one kind are held back before they are written: a busy database, for
// tests of what happens while a step waits for its commit.
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { overriding } from "./overriding-store.js";

/** `store`, with each commit that `slow` picks written only after `delayMs`. */
export function slowingCommits(
  store: Store,
  slow: (commit: TransitionCommit) => boolean,
  delayMs: number,
): Store {
  return overriding(store, {
    commitTransition: async (commit: TransitionCommit) => {
      if (slow(commit)) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return store.commitTransition(commit);
    },
  });
}
