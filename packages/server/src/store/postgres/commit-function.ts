// The PL/pgSQL function that writes one group-commit batch (see commit.ts), defined on each pooled
// connection in its temporary schema: nothing is added to the database's schema (which stays the
// one the numbered migrations make, revision for revision with SQLite's), and a server upgrade
// brings its own definition along. Its table names resolve through the connection's search_path.
//
// It takes the batch as a JSON array (in the order to apply: instance-key order) and answers one
// result per element: {"ok": true, "id", "seq"}, or {"ok": false, "err", "msg"?}. A commit that
// fails is rolled back alone: the batch is first tried in one block, and if any commit raises an
// error (a conflict does not), again with each commit in a block of its own (a subtransaction, as a
// savepoint would be). The functions' names carry a version, changed whenever what they do changes
// (v2: an event commit also needs the instance running, with the pending services expected; v3:
// and the key it names, if any, still there; v4: plain event commits are written together; v5, the
// batch only: its answer is kept under a token, see batch_outcomes; v5 of the commit and v6 of the
// batch: a row another transaction holds is answered "locked", not "conflict", and a batch may
// wait for one instance's row first; v6 and v7: timers sharing a key, detached from it (uk, and
// x in t) rather than replaced), so a definition never stands in for another's.
//
// Plain event commits (marked "f" by commit.ts: an event with no timer to deliver, cancel or arm,
// of an instance no other commit of the batch touches) are written by one set-based statement in
// that first block, with the same checks each would get alone. One statement instead of four per
// commit is what makes a batch of them cheap: about a third of PostgreSQL's time per commit, where
// the time of the one committer connection bounds a node's throughput.
//
// A commit never waits for a row another transaction holds (it would hold up every other commit
// of its batch, and waits in an arbitrary order could deadlock): it skips it. When the row skipped
// is exactly as the step was computed on, the answer is "locked", not "conflict": the holder may
// end without changing it (a pause of a paused instance, a batch rolled back, anyone's SELECT …
// FOR UPDATE), and then refusing the commit would report a conflict that never happened; or it
// may change it, and then the answer must come from the row it leaves. So the node writes such a
// commit again (commit.ts) in a batch of its own that first waits for that one row (wait_for),
// holding no other: it sees the row as its holder left it, and cannot be part of a deadlock.
// Element fields:
//   k      "c" (create: inserts the instance) or "e" (event: the optimistic sequence check)
//   o m n  org, machine and instance names;  id  the instance id (events)
//   v      machine version;  es  expected sequence (writes es + 1)
//   ep     expected pending services (JSON text; events): with es, the id and status 'running',
//          the row must be exactly as the record the step was computed on
//   s p    snapshot and pending services (JSON text);  e st  the transition's event and state
//   at     the commit's time;  dt  the timer this commit delivers (deleted, or the commit fails)
//   dk     the same, by key (the backstop of a self-sent event)
//   kid    the API key that must still exist in the org (refused with "key" otherwise)
//   rk     timer keys cancelled: each deletes the key's timer a cancel reaches
//   uk     timer keys whose timer a cancel reaches is detached (stays armed, out of its reach)
//   t      timers to arm, in order: [{k, d, e, x?}]; x: armed detached (see TimerToArm)
//   a      the position of the commit this one was built on, if in this batch: refused if it failed
//   f      1 on a plain event commit, written with the others in one statement
//   np     the change to announce if the commit is written (notices.ts): the written ones go out
//          as few NOTIFY payloads on the channel given, [origin, change, …], packed as payloads()
//          packs them

import { MAX_PAYLOAD_BYTES } from "./notices.js";

/**
 * The longest a node waits for a batch's answer before giving the batch up (and fencing it, see
 * ambiguous-batch.ts): far beyond any healthy batch, far below how long answers are kept.
 */
export const BATCH_TIMEOUT_MS = 60_000;
/**
 * The database's clock in epoch milliseconds, as batch outcomes are stamped and aged by it (one
 * clock for every node's rows, whatever each node's own says).
 */
export const DATABASE_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
/** How long a batch's answer is kept for its node to read back. */
const OUTCOME_KEEP_MS = 3_600_000;
/** About one batch in this many deletes answers older than that, at most so many at a time. */
const OUTCOME_PURGE_EVERY = 100;
const OUTCOME_PURGE_MAX_ROWS = 1_000;

/**
 * How long a batch written again for a locked row (wait_for) waits for that row before it gives
 * up: far beyond any transaction of a node (one statement, or a delete's few), and bounded so
 * that a row someone holds for good fails its commits with a clear reason rather than never.
 */
export const LOCKED_ROW_WAIT_MS = 10_000;

/** Why one commit of a batch was not written. */
export type CommitFailure = {
  ok: false;
  err:
    "conflict" | "locked" | "chain" | "exists" | "no-version" | "timer" | "race" | "key" | "other";
  msg?: string;
};

export const DEFINE_COMMIT_BATCH = `
CREATE OR REPLACE FUNCTION pg_temp.backstate_apply_commit_v6(c jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $body$
DECLARE
  iid bigint;
  seq bigint := (c ->> 'es')::bigint + 1;
  at bigint := (c ->> 'at')::bigint;
BEGIN
  -- Before any write: a commit refused for its key leaves the instance as it was. (A delete of
  -- the key racing this transaction is ordered after it, as when a request read the key just
  -- before its delete committed: no lock, so the delete need not wait for events in flight.)
  IF c ? 'kid' AND NOT EXISTS (SELECT 1 FROM keys WHERE org_id = c ->> 'o' AND id = c ->> 'kid')
  THEN
    RETURN jsonb_build_object('ok', false, 'err', 'key');
  END IF;
  IF c ->> 'k' = 'c' THEN
    INSERT INTO instances (org_id, machine_name, name, machine_version_id, snapshot, status,
      sequence, pending_services, created_at, updated_at)
    VALUES (c ->> 'o', c ->> 'm', c ->> 'n', c ->> 'v', c ->> 's', 'running', seq, c ->> 'p',
      at, at)
    RETURNING id INTO iid;
  ELSE
    -- The optimistic single-writer check: the row changes only if it is still as it was read
    -- (nobody committed, paused it or changed its pending services since) and running. The key
    -- columns make an id from another org (or instance) match nothing. A row that another
    -- transaction holds right now (another node's batch, pause or delete) is skipped, not waited
    -- for: waiting would hold up every other commit of this batch until that transaction ends.
    WITH target AS (
      SELECT id FROM instances
      WHERE id = (c ->> 'id')::bigint AND org_id = c ->> 'o' AND machine_name = c ->> 'm'
        AND name = c ->> 'n' AND sequence = (c ->> 'es')::bigint AND status = 'running'
        AND pending_services = c ->> 'ep'
      FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE instances SET machine_version_id = c ->> 'v', snapshot = c ->> 's', sequence = seq,
      pending_services = c ->> 'p', updated_at = at
    FROM target WHERE instances.id = target.id
    RETURNING instances.id INTO iid;
    IF iid IS NULL THEN
      -- Skipped while exactly as expected: another transaction holds it (see the top).
      IF EXISTS (SELECT 1 FROM instances
        WHERE id = (c ->> 'id')::bigint AND org_id = c ->> 'o' AND machine_name = c ->> 'm'
          AND name = c ->> 'n' AND sequence = (c ->> 'es')::bigint AND status = 'running'
          AND pending_services = c ->> 'ep')
      THEN
        RETURN jsonb_build_object('ok', false, 'err', 'locked');
      END IF;
      RETURN jsonb_build_object('ok', false, 'err', 'conflict');
    END IF;
  END IF;
  INSERT INTO transitions (instance_id, sequence, event, state, created_at)
  VALUES (iid, seq, c ->> 'e', c ->> 'st', at);
  IF c ? 'dt' THEN
    DELETE FROM timers WHERE id = (c ->> 'dt')::bigint AND instance_id = iid;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'the delivered timer is gone' USING ERRCODE = 'BSTMR';
    END IF;
  END IF;
  IF c ? 'dk' THEN
    DELETE FROM timers WHERE instance_id = iid AND key = c ->> 'dk' AND NOT detached;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'the delivered timer is gone' USING ERRCODE = 'BSTMR';
    END IF;
  END IF;
  IF c ? 'rk' THEN
    DELETE FROM timers WHERE instance_id = iid AND NOT detached
      AND key = ANY (ARRAY(SELECT jsonb_array_elements_text(c -> 'rk')));
  END IF;
  IF c ? 'uk' THEN
    UPDATE timers SET detached = true WHERE instance_id = iid AND NOT detached
      AND key = ANY (ARRAY(SELECT jsonb_array_elements_text(c -> 'uk')));
  END IF;
  IF c ? 't' THEN
    -- A key armed again keeps its earlier timer armed, out of a cancel's reach. Of this commit's
    -- timers, at most one per key comes attached (commit.ts detached the others).
    UPDATE timers SET detached = true WHERE instance_id = iid AND NOT detached
      AND key = ANY (ARRAY(
        SELECT armed ->> 'k' FROM jsonb_array_elements(c -> 't') AS armed WHERE NOT armed ? 'x'));
    INSERT INTO timers (instance_id, key, due_at, event, detached)
    SELECT iid, armed.value ->> 'k', (armed.value ->> 'd')::bigint, armed.value ->> 'e',
      armed.value ? 'x'
    FROM jsonb_array_elements(c -> 't') WITH ORDINALITY AS armed (value, position)
    ORDER BY armed.position;
  END IF;
  RETURN jsonb_build_object('ok', true, 'id', iid, 'seq', seq);
END
$body$;

CREATE OR REPLACE FUNCTION pg_temp.backstate_commit_batch_v7(
  batch jsonb, plain_count int, channel text, origin text, token text, wait_for bigint)
RETURNS jsonb LANGUAGE plpgsql AS $body$
DECLARE
  c jsonb;
  pos int;
  result jsonb;
  results jsonb[] := '{}';
  plain jsonb;
  plain_results jsonb;
  plain_changes text[];
  all_plain boolean := plain_count = jsonb_array_length(batch);
  answer jsonb;
  outcomes_before bigint;
  changes text[] := '{}';
  change text;
  payload text := '';
  lock_wait text;
BEGIN
  -- A batch written again for a locked row: that row first, waited for (and then held), before
  -- anything else is locked or written. Outside every block: given up, it fails the batch whole.
  IF wait_for IS NOT NULL THEN
    lock_wait := current_setting('lock_timeout');
    PERFORM set_config('lock_timeout', '${LOCKED_ROW_WAIT_MS}ms', true);
    PERFORM 1 FROM instances WHERE id = wait_for FOR NO KEY UPDATE;
    PERFORM set_config('lock_timeout', lock_wait, true);
  END IF;
  -- First all commits in one block: when none raises an error (a conflict is an answer, not an
  -- error), that costs one subtransaction for the batch.
  BEGIN
    IF plain_count > 0 THEN
      -- The plain event commits, each checked as backstate_apply_commit_v6 checks one: its key
      -- first, then the row exactly as the step was computed on, skipped (and answered "locked")
      -- if another transaction holds it. A row is written at most once: no two plain commits
      -- share an instance.
      WITH input AS (
        SELECT r.* FROM ROWS FROM (jsonb_to_recordset(batch) AS (f int, o text, m text, n text,
          id bigint, v text, es bigint, s text, p text, e text, st text, at bigint, kid text,
          ep text, np text)) WITH ORDINALITY AS r(f, o, m, n, id, v, es, s, p, e, st, at, kid, ep,
          np, pos)
        WHERE r.f = 1
      ), checked AS (
        SELECT input.*, (input.kid IS NULL OR EXISTS (
          SELECT 1 FROM keys WHERE keys.org_id = input.o AND keys.id = input.kid)) AS key_ok
        FROM input
      ), target AS (
        -- Each locked row with all its commit writes: the update and the insert below read
        -- them from here, row by row, rather than joining checked again (a nested loop that
        -- rescans it for every row, rebuilding each of its rows whole for the update's recheck).
        SELECT instances.id, checked.pos, checked.v, checked.s, checked.es, checked.p,
          checked.at, checked.e, checked.st
        FROM instances JOIN checked ON instances.id = checked.id
        WHERE checked.key_ok AND instances.org_id = checked.o
          AND instances.machine_name = checked.m AND instances.name = checked.n
          AND instances.sequence = checked.es AND instances.status = 'running'
          AND instances.pending_services = checked.ep
        FOR NO KEY UPDATE OF instances SKIP LOCKED
      ), updated AS (
        UPDATE instances SET machine_version_id = target.v, snapshot = target.s,
          sequence = target.es + 1, pending_services = target.p, updated_at = target.at
        FROM target WHERE instances.id = target.id
        RETURNING target.pos, instances.id, instances.sequence, target.e, target.st, target.at
      ), written AS (
        INSERT INTO transitions (instance_id, sequence, event, state, created_at)
        SELECT updated.id, updated.sequence, updated.e, updated.st, updated.at FROM updated
      ), outcome AS (
        SELECT checked.pos, checked.np, updated.id IS NOT NULL AS ok, CASE
            WHEN updated.id IS NOT NULL
              THEN jsonb_build_object('ok', true, 'id', updated.id, 'seq', updated.sequence)
            WHEN NOT checked.key_ok THEN jsonb_build_object('ok', false, 'err', 'key')
            WHEN EXISTS (SELECT 1 FROM instances AS held
                WHERE held.id = checked.id AND held.org_id = checked.o
                  AND held.machine_name = checked.m AND held.name = checked.n
                  AND held.sequence = checked.es AND held.status = 'running'
                  AND held.pending_services = checked.ep)
              THEN jsonb_build_object('ok', false, 'err', 'locked')
            ELSE jsonb_build_object('ok', false, 'err', 'conflict') END AS result
        FROM checked LEFT JOIN updated USING (pos)
      )
      SELECT jsonb_object_agg(outcome.pos - 1, outcome.result) FILTER (WHERE NOT all_plain),
        jsonb_agg(outcome.result ORDER BY outcome.pos),
        coalesce(array_agg(outcome.np ORDER BY outcome.pos) FILTER (WHERE outcome.ok), '{}')
      INTO plain, plain_results, plain_changes
      FROM outcome;
    END IF;
    IF all_plain THEN
      -- Every commit was plain (the usual batch): the statement answered them all, in order.
      answer := plain_results;
      changes := plain_changes;
    ELSE
      FOR c, pos IN SELECT value, ordinality - 1 FROM jsonb_array_elements(batch) WITH ORDINALITY
      LOOP
        IF c ? 'f' THEN
          result := plain -> pos::text;
        ELSIF c ? 'a' AND NOT coalesce((results[(c ->> 'a')::int + 1] ->> 'ok')::boolean, false)
        THEN
          result := jsonb_build_object('ok', false, 'err', 'chain');
        ELSE
          result := pg_temp.backstate_apply_commit_v6(c);
        END IF;
        results := results || result;
        IF (result ->> 'ok')::boolean THEN changes := changes || (c ->> 'np'); END IF;
      END LOOP;
    END IF;
  EXCEPTION WHEN OTHERS THEN
    -- One failed, and everything the block wrote is undone: again, each commit (plain ones too)
    -- in a block of its own, so a failing commit is rolled back alone.
    answer := NULL;
    results := '{}';
    changes := '{}';
    FOR c IN SELECT value FROM jsonb_array_elements(batch) LOOP
      IF c ? 'a' AND NOT coalesce((results[(c ->> 'a')::int + 1] ->> 'ok')::boolean, false) THEN
        results := results || jsonb_build_object('ok', false, 'err', 'chain');
        CONTINUE;
      END IF;
      BEGIN
        result := pg_temp.backstate_apply_commit_v6(c);
      EXCEPTION
        WHEN unique_violation THEN
          result := jsonb_build_object('ok', false,
            'err', CASE WHEN c ->> 'k' = 'c' THEN 'exists' ELSE 'other' END, 'msg', SQLERRM);
        WHEN foreign_key_violation THEN
          result := jsonb_build_object('ok', false, 'err', 'no-version', 'msg', SQLERRM);
        WHEN SQLSTATE 'BSTMR' THEN
          result := jsonb_build_object('ok', false, 'err', 'timer');
        WHEN deadlock_detected OR serialization_failure THEN
          result := jsonb_build_object('ok', false, 'err', 'race', 'msg', SQLERRM);
        WHEN OTHERS THEN
          result := jsonb_build_object('ok', false, 'err', 'other',
            'msg', SQLSTATE || ': ' || SQLERRM);
      END;
      results := results || result;
      IF (result ->> 'ok')::boolean THEN changes := changes || (c ->> 'np'); END IF;
    END LOOP;
  END;
  -- Delivered to every listening node when (and only if) the transaction commits: in one
  -- payload when they fit in one (the usual batch), else packed as payloads() packs them.
  IF cardinality(changes) > 0 THEN
    payload := '[' || origin || ',' || array_to_string(changes, ',') || ']';
    IF octet_length(payload) <= ${MAX_PAYLOAD_BYTES} THEN
      PERFORM pg_notify(channel, payload);
      changes := '{}';
    END IF;
    payload := '';
  END IF;
  FOREACH change IN ARRAY changes LOOP
    IF payload <> '' AND octet_length(payload) + octet_length(change) + 2 > ${MAX_PAYLOAD_BYTES} THEN
      PERFORM pg_notify(channel, payload || ']');
      payload := '';
    END IF;
    payload := CASE WHEN payload = '' THEN '[' || origin || ',' || change
      ELSE payload || ',' || change END;
  END LOOP;
  IF payload <> '' THEN
    PERFORM pg_notify(channel, payload || ']');
  END IF;
  answer := coalesce(answer, to_jsonb(results));
  -- Last, outside every block: the answer under the batch's token, for its node to read back if
  -- the answer is lost on the way. A row already there is that node's fence (it gave the batch
  -- up): the insert fails, and with it the whole batch.
  INSERT INTO batch_outcomes (token, results, created_at)
  VALUES (token, answer, ${DATABASE_NOW_MS});
  -- Now and then, answers of an hour ago go: no node still waits for them (a batch's node hears
  -- of it within BATCH_TIMEOUT_MS). Fences (no answer) stay: a fenced batch may be stuck for any
  -- time, and must find its token taken whenever it comes. Rows another node is purging are
  -- left to it, a bounded number go at a time, and a purge that fails fails nothing else.
  IF random() < ${1 / OUTCOME_PURGE_EVERY} THEN
    BEGIN
      -- A value, not the expression: a volatile one would keep the index out of the search.
      outcomes_before := ${DATABASE_NOW_MS} - ${OUTCOME_KEEP_MS};
      -- Columns qualified: a bare "token" would be this function's parameter.
      DELETE FROM batch_outcomes AS gone WHERE gone.token IN (
        SELECT old.token FROM batch_outcomes AS old
        WHERE old.created_at < outcomes_before AND old.results IS NOT NULL
        LIMIT ${OUTCOME_PURGE_MAX_ROWS} FOR UPDATE SKIP LOCKED);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'backstate: purging old batch outcomes failed: %', SQLERRM;
    END;
  END IF;
  RETURN answer;
END
$body$`;

/** One batch, in its own transaction: a single statement, so a single round trip. */
export const COMMIT_BATCH =
  "SELECT pg_temp.backstate_commit_batch_v7($1::jsonb, $2::int, $3::text, $4::text, $5::text, $6::bigint) AS results";
