// One chunk of the purge of deleted instances' history (see Store.purgeDeletedHistory), run by
// the caller inside one transaction.
import { changes, row, type Queryable } from "./connection.js";
import { SQL } from "./sql.js";

/** Deletes up to `maxRows` queued history rows, oldest instance first; returns how many. */
export async function purgeHistoryChunk(db: Queryable, maxRows: number): Promise<number> {
  let deleted = 0;
  while (deleted < maxRows) {
    // Locked until the chunk's transaction ends (see SQL.nextHistoryPurge).
    const next = await row<{ instanceId: number }>(db, SQL.nextHistoryPurge);
    if (next === undefined) break;
    const room = maxRows - deleted;
    const rows = await changes(db, SQL.deleteHistoryChunk, [next.instanceId, room]);
    deleted += rows;
    // Fewer than asked for: nothing of this history is left, so its purge is done (and the
    // chunk's room, if any, goes to the next one).
    if (rows < room) await changes(db, SQL.endHistoryPurge, [next.instanceId]);
  }
  return deleted;
}
