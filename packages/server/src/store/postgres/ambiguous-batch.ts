// When the connection breaks while a batch statement runs, or while its answer is on the way, the
// batch may have committed or not: PostgreSQL finishes (or aborts) the statement on its own, and
// the answer is lost. Reporting every commit of it as failed would be wrong when it landed: the
// transitions would stand in the history while their effects (actions, services) were dropped,
// and a caller told "failed" who retries would apply its event twice. So the batch's fate is
// looked up once the session that ran it has ended: each commit that is in the history is
// reported written, the others failed.
import type { Pool } from "pg";

/** What the lookup needs of one commit of the batch, as it was sent. */
export type SentCommit = {
  orgId: string;
  machineName: string;
  instanceName: string;
  /** The sequence the commit writes. */
  sequence: number;
  /** Its transition's event and state (JSON text) and time: with the sequence, its identity. */
  event: string;
  state: string;
  at: number;
};

export type Landed = { instanceId: number; sequence: number };

export type AmbiguityOptions = {
  /** How long to wait for the session that ran the batch to end. */
  settleMs: number;
  pollMs: number;
};

export const DEFAULT_AMBIGUITY_OPTIONS: AmbiguityOptions = { settleMs: 5_000, pollMs: 25 };

// A session that still runs a statement or holds a transaction open. Once the session whose
// client broke is gone (or idle, when only the client's side saw the break), its transaction is
// over one way or the other, and the history says which. (Its pid may be reused by a new session
// meanwhile; an idle one ends the wait as it should, and a busy one only makes it time out.)
const SESSION_BUSY = `SELECT 1 AS busy FROM pg_stat_activity
  WHERE pid = $1 AND state IS DISTINCT FROM 'idle'`;

// Each commit's transition row, found by the instance's name, the sequence, event, state and
// time it wrote: only that commit writes that sequence with that content at that millisecond.
const LANDED = `SELECT c.pos::int AS pos, i.id::bigint AS "instanceId", t.sequence::bigint AS sequence
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
    WITH ORDINALITY AS c (org_id, machine_name, name, sequence, event, state, at, pos)
  JOIN instances i ON i.org_id = c.org_id AND i.machine_name = c.machine_name AND i.name = c.name
  JOIN transitions t ON t.instance_id = i.id AND t.sequence = c.sequence AND t.event = c.event
    AND t.state = c.state AND t.created_at = c.at`;

/**
 * Waits for session `backendPid` to end its transaction, then answers, per commit in `sent`'s
 * order, whether it was written (with the instance id and sequence) or not (undefined). Throws
 * when that cannot be known: the database cannot be reached, or the session outlasts `settleMs`.
 */
export async function lookUpAmbiguousBatch(
  pool: Pool,
  backendPid: number,
  sent: readonly SentCommit[],
  options: AmbiguityOptions = DEFAULT_AMBIGUITY_OPTIONS,
): Promise<Array<Landed | undefined>> {
  const deadline = Date.now() + options.settleMs;
  for (;;) {
    const busy = await pool.query(SESSION_BUSY, [backendPid]);
    if (busy.rowCount === 0) break;
    if (Date.now() >= deadline) {
      throw new Error(`the session that ran the batch (pid ${backendPid}) is still busy`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
  const column = <K extends keyof SentCommit>(key: K) => sent.map((commit) => commit[key]);
  const found = await pool.query<{ pos: number; instanceId: string; sequence: string }>(LANDED, [
    column("orgId"),
    column("machineName"),
    column("instanceName"),
    column("sequence"),
    column("event"),
    column("state"),
    column("at"),
  ]);
  const landed = new Array<Landed | undefined>(sent.length).fill(undefined);
  for (const row of found.rows) {
    landed[row.pos - 1] = { instanceId: Number(row.instanceId), sequence: Number(row.sequence) };
  }
  return landed;
}
