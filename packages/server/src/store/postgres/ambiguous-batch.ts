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
//
// The answer is lost most often because the database went away (a crash and its recovery, a
// failover, the network): then the fence cannot be sent at once either, and is tried again until
// the database answers, for a while. Given up at once, a batch that had committed was reported
// failed: its effects dropped, and its callers, told "failed", retried and applied it twice.
import { performance } from "node:perf_hooks";
import type { Pool } from "pg";
import { DATABASE_NOW_MS } from "./commit-function.js";
import { inTransaction } from "./connection.js";

/** How long the fence may wait for a batch still running (on locks, say) before giving up. */
const FENCE_LOCK_TIMEOUT = "10s";
/**
 * How long a batch's fate is asked for before it is given up as unknown: long enough for a
 * database to restart or fail over, short of the engine's settle timeout (90 s).
 */
export const SETTLE_WITHIN_MS = 30_000;
/** The first wait between tries, doubling up to the last. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2_000;

const FENCE = `INSERT INTO batch_outcomes (token, results, created_at)
  VALUES ($1, NULL, ${DATABASE_NOW_MS})
  ON CONFLICT (token) DO NOTHING`;
const OUTCOME = "SELECT results FROM batch_outcomes WHERE token = $1";

/**
 * The answer of the batch sent under `token` (what the commit function returned), or undefined
 * when it wrote nothing and now never will. Throws when that cannot be learnt within `withinMs`
 * (the database cannot be reached, or the batch outlasts the fence's waits).
 */
export async function settleLostBatch<R>(
  pool: Pool,
  token: string,
  withinMs = SETTLE_WITHIN_MS,
): Promise<R | undefined> {
  const deadline = performance.now() + withinMs;
  for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
    try {
      return await fenceOrRead<R>(pool, token);
    } catch (error) {
      // An answer the database gave stands: only a database out of reach (or busy) may change.
      if (error instanceof OutcomeRowGone || performance.now() + wait > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** The fence found the token taken, then no row under it: nothing a later try would change. */
class OutcomeRowGone extends Error {
  constructor(token: string) {
    super(`batch ${token}: its outcome row is gone`);
  }
}

async function fenceOrRead<R>(pool: Pool, token: string): Promise<R | undefined> {
  return inTransaction(pool, async (client) => {
    await client.query(`SET LOCAL lock_timeout = '${FENCE_LOCK_TIMEOUT}'`);
    const fenced = await client.query(FENCE, [token]);
    if (fenced.rowCount === 1) return undefined;
    const found = await client.query<{ results: R | null }>(OUTCOME, [token]);
    const results = found.rows[0]?.results;
    // A fence with no answer: an earlier try's, which committed though its own answer was lost
    // (a token is one batch's, fenced by nobody else).
    if (results === null) return undefined;
    if (results === undefined) throw new OutcomeRowGone(token);
    return results;
  });
}
