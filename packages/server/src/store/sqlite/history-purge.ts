// One chunk of the purge of deleted instances' history (see Store.purgeDeletedHistory), run by
// the caller inside one transaction.
import type { Statements } from "./statements.js";

/** Deletes up to `maxRows` queued history rows, oldest instance first; returns how many. */
export function purgeHistoryChunk(s: Statements, maxRows: number): number {
  let deleted = 0;
  while (deleted < maxRows) {
    const instanceId = s.nextHistoryPurge.get();
    if (instanceId === undefined) break;
    const room = maxRows - deleted;
    const rows = s.deleteHistoryChunk.run(instanceId, instanceId, room).changes;
    deleted += rows;
    // Fewer than asked for: nothing of this history is left, so its purge is done (and the
    // chunk's room, if any, goes to the next one).
    if (rows < room) s.endHistoryPurge.run(instanceId);
  }
  return deleted;
}
