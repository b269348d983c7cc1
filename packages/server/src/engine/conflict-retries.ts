// How a node tries an event again after its commit lost a race with another node's (the store's
// optimistic check refused it: the instance moved on since the record it was stepped on). Every
// try is a fresh load, a sandbox step and a commit, so with several nodes writing one instance at
// once, each try is a race among them all: with two nodes busy on a hot instance a try loses about
// half the time, and with ten tries an event in a few thousand was refused with a 409 the client
// did nothing to earn. So there are many more tries, and from the second loss on each waits a
// random while that grows with the losses (up to 100 ms): the nodes that keep losing step aside,
// the race thins out, and the work a hopeless event costs stays bounded (at most ~5 s of waits).

/** How often one event is tried again after losing a race with another node's commit. */
export const MAX_CONFLICT_RETRIES = 50;

const LONGEST_PAUSE_MS = 100;

/**
 * Waits before the next try of an event that lost `losses` races: not at all after the first (the
 * other node most likely committed once), then a random time below 2^losses ms, at most 100 ms.
 */
export function pauseAfterLosses(losses: number): Promise<void> {
  if (losses <= 1) return Promise.resolve();
  const ceiling = Math.min(LONGEST_PAUSE_MS, 2 ** losses);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
}
