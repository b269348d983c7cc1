// Every SQL statement the PostgreSQL adapter runs, each parameterized ($1, $2, …; never a value
// spliced into the text). Columns are aliased (quoted, since PostgreSQL folds unquoted names to
// lower case) to the record fields they fill. Every lookup of an org's rows names the org.

/**
 * A keyset-paged listing: `first` has no lower bound, `after` takes the position (after the
 * scope's parameters) and returns rows strictly past it; the limit is the last parameter of both.
 * Two statements rather than one with "$n IS NULL OR …", so each plans as the index seek it is.
 */
export type Listing = { first: string; after: string };

/**
 * `sql` has `{after}` where the position's condition goes and `{limit}` for the limit; the
 * condition numbers its own parameters `{1}`, `{2}`, … (they follow the `scope` ones).
 */
function listing(sql: string, scope: number, condition: string, positions: number): Listing {
  const param = (n: number) => `$${n}`;
  const numbered = condition.replace(/\{(\d)\}/g, (_, n: string) => param(scope + Number(n)));
  return {
    first: sql.replace("{after}", "").replace("{limit}", param(scope + 1)),
    after: sql
      .replace("{after}", `AND ${numbered}`)
      .replace("{limit}", param(scope + positions + 1)),
  };
}

const MACHINE_COLUMNS = `org_id AS "orgId", name, current_version_id AS "currentVersionId",
  indexes, created_at AS "createdAt"`;

const INSTANCE_COLUMNS = `id, org_id AS "orgId", machine_name AS "machineName",
  name AS "instanceName", machine_version_id AS "machineVersionId", snapshot, status, sequence,
  pending_services AS "pendingServices", created_at AS "createdAt", updated_at AS "updatedAt"`;

export const SQL = {
  // The first value written stays, whoever wrote it.
  ping: "SELECT 1",
  // As the pool's sessions have it: the server's default, or the role's, database's or URL's.
  selectSynchronousCommit: "SELECT current_setting('synchronous_commit') AS value",
  insertSetting: "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
  selectSetting: "SELECT value FROM settings WHERE name = $1",

  insertOrg: "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
  selectOrg: `SELECT id, name, created_at AS "createdAt" FROM orgs WHERE id = $1`,

  insertUser: "INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)",
  selectUser: `SELECT id, name, created_at AS "createdAt" FROM users WHERE id = $1`,
  // Adds a member, or changes an existing member's role (keeping when they joined).
  upsertMember: `INSERT INTO org_members (org_id, user_id, role, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $4)
    ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role,
      updated_at = EXCLUDED.updated_at`,
  selectRole: "SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2",
  listOrgsOfUser: listing(
    `SELECT o.id, o.name, o.created_at AS "createdAt", m.role
     FROM org_members m JOIN orgs o ON o.id = m.org_id
     WHERE m.user_id = $1 {after}
     ORDER BY m.org_id LIMIT {limit}`,
    1,
    "m.org_id > {1}",
    1,
  ),

  insertAdminSession: `INSERT INTO admin_sessions (id, user_id, secret, created_at)
    VALUES ($1, $2, $3, $4)`,
  selectAdminSession: `SELECT id, user_id AS "userId", secret, created_at AS "createdAt"
    FROM admin_sessions WHERE id = $1`,
  deleteAdminSession: "DELETE FROM admin_sessions WHERE id = $1",

  insertKey: `INSERT INTO keys (id, org_id, name, secret, scopes, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)`,
  selectKey: `SELECT id, org_id AS "orgId", name, secret, scopes, created_at AS "createdAt"
    FROM keys WHERE id = $1`,
  // Many keys at once (the read batcher's statement): the ids as one array.
  selectKeys: `SELECT id, org_id AS "orgId", name, secret, scopes, created_at AS "createdAt"
    FROM keys WHERE id = ANY ($1::text[])`,
  deleteKey: "DELETE FROM keys WHERE org_id = $1 AND id = $2",
  listKeys: listing(
    `SELECT id, org_id AS "orgId", name, scopes, created_at AS "createdAt"
     FROM keys WHERE org_id = $1 {after}
     ORDER BY id LIMIT {limit}`,
    1,
    "id > {1}",
    1,
  ),

  insertMachine: `INSERT INTO machines (org_id, name, indexes, created_at)
    VALUES ($1, $2, $3, $4)`,
  selectMachine: `SELECT ${MACHINE_COLUMNS} FROM machines WHERE org_id = $1 AND name = $2`,
  listMachines: listing(
    `SELECT m.org_id AS "orgId", m.name, m.current_version_id AS "currentVersionId", m.indexes,
       m.created_at AS "createdAt", v.client_info AS "versionClientInfo",
       v.created_at AS "versionCreatedAt"
     FROM machines m LEFT JOIN machine_versions v
       ON v.org_id = m.org_id AND v.machine_name = m.name AND v.id = m.current_version_id
     WHERE m.org_id = $1 {after}
     ORDER BY m.name LIMIT {limit}`,
    1,
    "m.name > {1}",
    1,
  ),
  setCurrentVersion: "UPDATE machines SET current_version_id = $3 WHERE org_id = $1 AND name = $2",
  setCurrentVersionIfNone: `UPDATE machines SET current_version_id = $3
    WHERE org_id = $1 AND name = $2 AND current_version_id IS NULL`,
  // Serializes the writes that add to a machine (versions, uploads) with each other: a version
  // and an upload of the same id cannot both pass their checks. Names no key column, so it does
  // not block the foreign-key checks of other writers.
  lockMachineForAdding: `SELECT 1 FROM machines WHERE org_id = $1 AND name = $2
    FOR NO KEY UPDATE`,
  // Deleting: also waits for (and then keeps out) every writer that adds to the machine.
  lockMachineForDelete: "SELECT 1 FROM machines WHERE org_id = $1 AND name = $2 FOR UPDATE",
  machineHasInstances: `SELECT 1 FROM instances WHERE org_id = $1 AND machine_name = $2
    LIMIT 1`,
  deleteVersionsOfMachine: "DELETE FROM machine_versions WHERE org_id = $1 AND machine_name = $2",
  deleteUploadsOfMachine: "DELETE FROM code_uploads WHERE org_id = $1 AND machine_name = $2",
  deleteMachine: "DELETE FROM machines WHERE org_id = $1 AND name = $2",

  insertVersion: `INSERT INTO machine_versions
      (org_id, machine_name, id, code, hash, client_info, index_selectors, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
  selectVersion: `SELECT id, org_id AS "orgId", machine_name AS "machineName", code, hash,
      client_info AS "clientInfo", index_selectors AS "indexSelectors", created_at AS "createdAt"
    FROM machine_versions WHERE org_id = $1 AND machine_name = $2 AND id = $3`,
  versionExists: `SELECT 1 FROM machine_versions
    WHERE org_id = $1 AND machine_name = $2 AND id = $3`,
  selectVersionInfo: `SELECT id, client_info AS "clientInfo", created_at AS "createdAt"
    FROM machine_versions WHERE org_id = $1 AND machine_name = $2 AND id = $3`,
  listVersions: listing(
    `SELECT id, client_info AS "clientInfo", created_at AS "createdAt"
     FROM machine_versions WHERE org_id = $1 AND machine_name = $2 {after}
     ORDER BY created_at, id LIMIT {limit}`,
    2,
    "(created_at, id) > ({1}, {2})",
    2,
  ),

  insertUpload: `INSERT INTO code_uploads (org_id, machine_name, id, code, created_at)
    VALUES ($1, $2, $3, $4, $5)`,
  selectUpload: `SELECT org_id AS "orgId", machine_name AS "machineName", id, code,
      created_at AS "createdAt"
    FROM code_uploads WHERE org_id = $1 AND machine_name = $2 AND id = $3`,
  deleteUpload: "DELETE FROM code_uploads WHERE org_id = $1 AND machine_name = $2 AND id = $3",
  purgeUploads: "DELETE FROM code_uploads WHERE created_at < $1",
  // DISTINCT: ON CONFLICT cannot touch one row twice in a statement, so an instance named twice
  // would fail the whole call (SQLite's upsert, row by row, takes it).
  leaseServices: `INSERT INTO service_leases (org_id, machine_name, instance_name, node_id, until)
    SELECT DISTINCT org_id, machine_name, instance_name, $4::text, $5::bigint
    FROM unnest($1::text[], $2::text[], $3::text[]) AS l (org_id, machine_name, instance_name)
    ON CONFLICT (org_id, machine_name, instance_name, node_id) DO UPDATE SET until = EXCLUDED.until`,
  // The node's leases on the instances named, and every lease that has run out. Two deletes, not
  // one with OR: each finds its rows by an index (the key; service_leases_by_until), where the OR
  // read every lease in the table.
  endServiceLeases: `WITH ended AS (
      DELETE FROM service_leases l
      USING unnest($1::text[], $2::text[], $3::text[]) AS e (org_id, machine_name, instance_name)
      WHERE l.org_id = e.org_id AND l.machine_name = e.machine_name
        AND l.instance_name = e.instance_name AND l.node_id = $4
    )
    DELETE FROM service_leases WHERE until < $5`,
  serviceLeasedElsewhere: `SELECT 1 AS found FROM service_leases
    WHERE org_id = $1 AND machine_name = $2 AND instance_name = $3 AND node_id <> $4 AND until > $5
    LIMIT 1`,

  selectInstance: `SELECT ${INSTANCE_COLUMNS} FROM instances
    WHERE org_id = $1 AND machine_name = $2 AND name = $3`,
  // Many instances at once (the read batcher's statement): parallel arrays of the key columns.
  selectInstances: `SELECT ${INSTANCE_COLUMNS} FROM instances
    WHERE (org_id, machine_name, name) IN (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
  // Transition commits are written by the function in commit-function.ts.
  // Locks the row, so no commit of this instance lands between the lookup and the deletes.
  lockInstance: `SELECT id FROM instances WHERE org_id = $1 AND machine_name = $2 AND name = $3
    FOR UPDATE`,
  listInstances: listing(
    `SELECT i.name, i.status, i.created_at AS "createdAt", v.id AS "versionId",
       v.client_info AS "versionClientInfo", v.created_at AS "versionCreatedAt"
     FROM instances i JOIN machine_versions v
       ON v.org_id = i.org_id AND v.machine_name = i.machine_name AND v.id = i.machine_version_id
     WHERE i.org_id = $1 AND i.machine_name = $2 {after}
     ORDER BY i.name LIMIT {limit}`,
    2,
    "i.name > {1}",
    1,
  ),
  deleteInstance: "DELETE FROM instances WHERE id = $1",
  queueHistoryPurge: "INSERT INTO history_purges (instance_id) VALUES ($1)",
  // A queue row another node's chunk holds is skipped, not waited for: two nodes never work on
  // one purge at once, and neither waits on the other.
  nextHistoryPurge: `SELECT instance_id AS "instanceId" FROM history_purges
    ORDER BY instance_id LIMIT 1 FOR UPDATE SKIP LOCKED`,
  // The first rows by the primary key: a chunk reads no more of the history than it deletes.
  deleteHistoryChunk: `DELETE FROM transitions WHERE instance_id = $1 AND sequence IN (
      SELECT sequence FROM transitions WHERE instance_id = $1 ORDER BY sequence LIMIT $2)`,
  endHistoryPurge: "DELETE FROM history_purges WHERE instance_id = $1",
  deleteTimersOfInstance: "DELETE FROM timers WHERE instance_id = $1",
  setStatus:
    "UPDATE instances SET status = $1 WHERE org_id = $2 AND machine_name = $3 AND name = $4",
  pauseInstance: `UPDATE instances SET status = 'paused'
    WHERE org_id = $1 AND machine_name = $2 AND name = $3 RETURNING id, sequence`,
  setPendingServices: `UPDATE instances SET pending_services = $1
    WHERE id = $2 AND sequence = $3 AND pending_services = $4 AND status = $5`,
  instanceExists: "SELECT 1 AS found FROM instances WHERE id = $1",

  // A page stops after the row that brings its events and states to $6 bytes (see Store): the
  // sizes are read first (octet_length reads a stored value's size, not the value), then only
  // the rows kept. The instance's id is looked up first, as a value: joined to instances
  // instead, the planner does not know the id is one, and sorted the instance's whole history
  // for each page (1.1 s for a page of 50 of an instance with 1,000,000 transitions).
  selectTransitions: `WITH page AS (
      SELECT t.instance_id, t.sequence, octet_length(t.event) + octet_length(t.state) AS size
      FROM transitions t
      WHERE t.instance_id = (SELECT id FROM instances
          WHERE org_id = $1 AND machine_name = $2 AND name = $3)
        AND t.sequence > $4
      ORDER BY t.sequence LIMIT $5
    ), kept AS (
      SELECT instance_id, sequence, sum(size) OVER (ORDER BY sequence) - size AS before
      FROM page
    )
    SELECT t.sequence, t.event, t.state, t.created_at AS "createdAt"
    FROM kept JOIN transitions t USING (instance_id, sequence)
    WHERE kept.before < $6
    ORDER BY t.sequence`,
  selectTransitionsNewestFirst: `WITH page AS (
      SELECT t.instance_id, t.sequence, octet_length(t.event) + octet_length(t.state) AS size
      FROM transitions t
      WHERE t.instance_id = (SELECT id FROM instances
          WHERE org_id = $1 AND machine_name = $2 AND name = $3)
        AND t.sequence < $4
      ORDER BY t.sequence DESC LIMIT $5
    ), kept AS (
      SELECT instance_id, sequence, sum(size) OVER (ORDER BY sequence DESC) - size AS before
      FROM page
    )
    SELECT t.sequence, t.event, t.state, t.created_at AS "createdAt"
    FROM kept JOIN transitions t USING (instance_id, sequence)
    WHERE kept.before < $6
    ORDER BY t.sequence DESC`,

  // The earliest unclaimed due time, or the earliest moment a lease lapses (a leased timer is
  // claimable again once both its due time and its lease have passed). LEAST skips NULLs.
  nextTimerDue: `SELECT LEAST(
      (SELECT min(due_at) FROM timers WHERE claimed_until IS NULL),
      (SELECT min(GREATEST(due_at, claimed_until)) FROM timers WHERE claimed_until IS NOT NULL)
    ) AS "dueAt"`,
  // One statement, fair between orgs as SQLite's claimer is (fair-timer-claims.ts). The orgs to
  // rank are those of the claimable due timers, when there are fewer than $4 of them; with a
  // backlog, every org that has timers (a loose index scan, one seek each), with each org's
  // earliest claimable due timers. Each timer is ranked by its turn (the org's timers under lease
  // + its place in the org's line), and the lowest turns are taken. The picked rows are locked as
  // they are taken: SKIP LOCKED passes over the ones another claimer is leasing right now, and a
  // row that claimer leased in the meantime is re-checked against the lease condition before it
  // is taken. So no two claimers ever lease the same timer while its lease holds.
  claimTimers: `WITH RECURSIVE due_now AS (
      SELECT t.id, t.org_id, t.due_at FROM timers t
      WHERE t.due_at <= $1 AND (t.claimed_until IS NULL OR t.claimed_until <= $1)
      LIMIT $4
    ), backlog AS (
      SELECT count(*) >= $4 AS walk FROM due_now
    ), timer_orgs AS (
      (SELECT org_id FROM timers WHERE (SELECT walk FROM backlog) ORDER BY org_id LIMIT 1)
      UNION ALL
      SELECT (SELECT t.org_id FROM timers t WHERE t.org_id > o.org_id ORDER BY t.org_id LIMIT 1)
      FROM timer_orgs o WHERE o.org_id IS NOT NULL
    ), lines AS (
      SELECT o.org_id, c.id, c.due_at
      FROM timer_orgs o
      CROSS JOIN LATERAL (
        SELECT t.id, t.due_at FROM timers t
        WHERE t.org_id = o.org_id AND t.due_at <= $1
          AND (t.claimed_until IS NULL OR t.claimed_until <= $1)
        ORDER BY t.due_at, t.id
        LIMIT $2
      ) c
      UNION ALL
      SELECT org_id, id, due_at FROM due_now WHERE NOT (SELECT walk FROM backlog)
    ), leased AS (
      SELECT org_id, count(*) AS n FROM timers WHERE claimed_until > $1 GROUP BY org_id
    ), candidates AS (
      SELECT x.id, x.due_at,
        coalesce(l.n, 0) + row_number() OVER (PARTITION BY x.org_id ORDER BY x.due_at, x.id) AS turn
      FROM lines x
      LEFT JOIN leased l ON l.org_id = x.org_id
    ), picked AS (
      SELECT id FROM candidates ORDER BY turn, due_at, id LIMIT $2
    ), due AS (
      SELECT t.id FROM picked JOIN timers t ON t.id = picked.id
      WHERE t.due_at <= $1 AND (t.claimed_until IS NULL OR t.claimed_until <= $1)
      FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE timers t SET claimed_until = $3
    FROM due, instances i
    WHERE t.id = due.id AND i.id = t.instance_id
    RETURNING t.id, t.instance_id AS "instanceId", t.key, t.due_at AS "dueAt", t.event,
      t.attempts, i.org_id AS "orgId", i.machine_name AS "machineName",
      i.name AS "instanceName"`,
  // A failed delivery's record, made only while its claim still holds the timer.
  retryClaimedTimer: `UPDATE timers SET attempts = attempts + 1, claimed_until = NULL, due_at = $1
    WHERE id = $2 AND claimed_until = $3`,
  dropClaimedTimer: "DELETE FROM timers WHERE id = $1 AND claimed_until = $2",
  instancesWithPendingServices: `SELECT id, org_id AS "orgId", machine_name AS "machineName",
      name AS "instanceName"
    FROM instances WHERE id > $1 AND status = 'running' AND pending_services <> '[]'
    ORDER BY id LIMIT $2`,
  deleteTimersByKey: "DELETE FROM timers WHERE instance_id = $1 AND key = ANY($2::text[])",

  // A change notice for the other nodes (notices.ts), sent when the transaction commits.
  notify: "SELECT pg_notify($1, $2)",
} as const;
