// When the connection breaks while a batch statement runs, or while its answer is on the way, the
// batch may have committed, may still commit, or may never: the answer is lost. Reporting every
// commit of it as failed would be wrong when it landed: the transitions would stand in the history
// while their effects (actions, services) were dropped, and a caller told "failed" who retries
// would apply its event twice.
//
// So each batch keeps its answer under a token of its own (batch_outcomes, written last in its
// transaction), and the node that lost the answer settles the batch's fate with one insert under
// that token: if the batch committed, the row is there and holds the answer; if the batch has
// written its row but not yet committed, the insert waits for its end; if it has not got that far
// (or not even arrived), the node's own row, a fence that is never purged, takes the token first,
// and the batch's insert, whenever it comes, fails and takes the whole batch with it. Nothing here
// depends on which session ran the batch, so a pooler or proxy in between changes nothing.
import type { Pool } from "pg";
import { DATABASE_NOW_MS } from "./commit-function.js";
import { inTransaction } from "./connection.js";

/** How long the fence may wait for a batch still running (on locks, say) before giving up. */
const FENCE_LOCK_TIMEOUT = "10s";

const FENCE = `INSERT INTO batch_outcomes (token, results, created_at)
  VALUES ($1, NULL, ${DATABASE_NOW_MS})
  ON CONFLICT (token) DO NOTHING`;
const OUTCOME = "SELECT results FROM batch_outcomes WHERE token = $1";

/**
 * The answer of the batch sent under `token` (what the commit function returned), or undefined
 * when it wrote nothing and now never will. Throws when that cannot be learnt (the database cannot
 * be reached, or the batch outlasted the fence's wait).
 */
export async function settleLostBatch<R>(pool: Pool, token: string): Promise<R | undefined> {
  return inTransaction(pool, async (client) => {
    await client.query(`SET LOCAL lock_timeout = '${FENCE_LOCK_TIMEOUT}'`);
    const fenced = await client.query(FENCE, [token]);
    if (fenced.rowCount === 1) return undefined;
    const found = await client.query<{ results: R | null }>(OUTCOME, [token]);
    const results = found.rows[0]?.results;
    // Another fence under the same token: a token is one batch's, so this cannot happen.
    if (results === null || results === undefined) {
      throw new Error(`batch ${token}: its outcome row holds no answer`);
    }
    return results;
  });
}
