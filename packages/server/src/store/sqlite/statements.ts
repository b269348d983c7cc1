// Every SQL statement the SQLite adapter runs, prepared once per connection (after migrations,
// since preparing checks the tables exist). Columns are aliased to the record fields they fill.
import type Database from "better-sqlite3";
import type {
  AdminSessionRecord,
  CodeUploadRecord,
  OrgRecord,
  TransitionRecord,
  UserRecord,
} from "../store.js";
import type {
  KeyRow,
  KeyInfoRow,
  MembershipRow,
  MachineRow,
  MachineSummaryRow,
  VersionInfoRow,
  VersionRow,
  InstanceRow,
  InstanceSummaryRow,
  DueTimerRow,
} from "../rows.js";

/**
 * The part of better-sqlite3's Statement the adapter uses. Declared here because the driver's own
 * type cannot be named in emitted .d.ts files.
 */
export interface Statement<P extends unknown[], R = unknown> {
  run(...params: P): Database.RunResult;
  get(...params: P): R | undefined;
  all(...params: P): R[];
}

// Parameter order of every instance lookup by key.
type KeyParams = [orgId: string, machineName: string, instanceName: string];
// Parameter order of every lookup of a machine's rows.
type MachineParams = [orgId: string, machineName: string];

/**
 * A keyset-paged listing: `first` has no lower bound, `after` takes the position (after the
 * scope's parameters) and returns rows strictly past it. Two statements rather than one with
 * "? IS NULL OR …", which would keep SQLite from seeking the index to the position.
 */
export type Paged<P extends unknown[], A extends unknown[], R> = {
  first: Statement<[...P, limit: number], R>;
  after: Statement<[...P, ...A, limit: number], R>;
};

const MACHINE_COLUMNS = `org_id AS orgId, name, current_version_id AS currentVersionId, indexes,
  created_at AS createdAt`;

const INSTANCE_COLUMNS = `id, org_id AS orgId, machine_name AS machineName, name AS instanceName,
  machine_version_id AS machineVersionId, snapshot, status, sequence,
  pending_services AS pendingServices, created_at AS createdAt, updated_at AS updatedAt`;

export function prepareStatements(db: Database.Database) {
  const prepare = <P extends unknown[], R = unknown>(sql: string): Statement<P, R> =>
    db.prepare<P, R>(sql);
  // For a query of one column: rows come back as that column's value.
  const prepareValue = <P extends unknown[], R>(sql: string): Statement<P, R> =>
    db.prepare<P, R>(sql).pluck();
  // `sql` has "{after}" where the position's condition goes, before ORDER BY.
  const preparePaged = <P extends unknown[], A extends unknown[], R>(
    sql: string,
    afterCondition: string,
  ): Paged<P, A, R> => ({
    first: prepare<[...P, limit: number], R>(sql.replace("{after}", "")),
    after: prepare<[...P, ...A, limit: number], R>(sql.replace("{after}", `AND ${afterCondition}`)),
  });
  return {
    ping: prepareValue<[], number>("SELECT 1"),
    // INSERT OR IGNORE: the first value written stays, whoever wrote it.
    insertSetting: prepare<[name: string, value: string]>(
      "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)",
    ),
    selectSetting: prepareValue<[name: string], string>(
      "SELECT value FROM settings WHERE name = ?",
    ),

    insertOrg: prepare<[id: string, name: string, createdAt: number]>(
      "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
    ),
    selectOrg: prepare<[id: string], OrgRecord>(
      "SELECT id, name, created_at AS createdAt FROM orgs WHERE id = ?",
    ),

    insertUser: prepare<[id: string, name: string, createdAt: number]>(
      "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)",
    ),
    selectUser: prepare<[id: string], UserRecord>(
      "SELECT id, name, created_at AS createdAt FROM users WHERE id = ?",
    ),
    // Adds a member, or changes an existing member's role (keeping when they joined).
    upsertMember: prepare<[orgId: string, userId: string, role: string, at: number, at: number]>(
      `INSERT INTO org_members (org_id, user_id, role, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role,
         updated_at = excluded.updated_at`,
    ),
    selectRole: prepareValue<[orgId: string, userId: string], string>(
      "SELECT role FROM org_members WHERE org_id = ? AND user_id = ?",
    ),
    listOrgsOfUser: preparePaged<[userId: string], [afterOrgId: string], MembershipRow>(
      `SELECT o.id, o.name, o.created_at AS createdAt, m.role
       FROM org_members m JOIN orgs o ON o.id = m.org_id
       WHERE m.user_id = ? {after}
       ORDER BY m.org_id LIMIT ?`,
      "m.org_id > ?",
    ),

    insertAdminSession: prepare<[id: string, userId: string, secret: string, createdAt: number]>(
      "INSERT INTO admin_sessions (id, user_id, secret, created_at) VALUES (?, ?, ?, ?)",
    ),
    selectAdminSession: prepare<[id: string], AdminSessionRecord>(
      `SELECT id, user_id AS userId, secret, created_at AS createdAt
       FROM admin_sessions WHERE id = ?`,
    ),
    deleteAdminSession: prepare<[id: string]>("DELETE FROM admin_sessions WHERE id = ?"),

    insertKey: prepare<
      [id: string, orgId: string, name: string, secret: string, scopes: string, createdAt: number]
    >("INSERT INTO keys (id, org_id, name, secret, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
    selectKey: prepare<[id: string], KeyRow>(
      `SELECT id, org_id AS orgId, name, secret, scopes, created_at AS createdAt
       FROM keys WHERE id = ?`,
    ),
    keyExists: prepareValue<[orgId: string, id: string], number>(
      "SELECT 1 FROM keys WHERE org_id = ? AND id = ?",
    ),
    deleteKey: prepare<[orgId: string, id: string]>("DELETE FROM keys WHERE org_id = ? AND id = ?"),
    listKeys: preparePaged<[orgId: string], [afterId: string], KeyInfoRow>(
      `SELECT id, org_id AS orgId, name, scopes, created_at AS createdAt
       FROM keys WHERE org_id = ? {after} ORDER BY id LIMIT ?`,
      "id > ?",
    ),

    insertMachine: prepare<[orgId: string, name: string, indexes: string, createdAt: number]>(
      "INSERT INTO machines (org_id, name, indexes, created_at) VALUES (?, ?, ?, ?)",
    ),
    selectMachine: prepare<MachineParams, MachineRow>(
      `SELECT ${MACHINE_COLUMNS} FROM machines WHERE org_id = ? AND name = ?`,
    ),
    listMachines: preparePaged<[orgId: string], [afterName: string], MachineSummaryRow>(
      `SELECT m.org_id AS orgId, m.name, m.current_version_id AS currentVersionId, m.indexes,
         m.created_at AS createdAt, v.client_info AS versionClientInfo,
         v.created_at AS versionCreatedAt
       FROM machines m LEFT JOIN machine_versions v
         ON v.org_id = m.org_id AND v.machine_name = m.name AND v.id = m.current_version_id
       WHERE m.org_id = ? {after}
       ORDER BY m.name LIMIT ?`,
      "m.name > ?",
    ),
    setCurrentVersion: prepare<[versionId: string | null, ...MachineParams]>(
      "UPDATE machines SET current_version_id = ? WHERE org_id = ? AND name = ?",
    ),
    setCurrentVersionIfNone: prepare<[versionId: string, ...MachineParams]>(
      `UPDATE machines SET current_version_id = ?
       WHERE org_id = ? AND name = ? AND current_version_id IS NULL`,
    ),
    machineExists: prepareValue<MachineParams, number>(
      "SELECT 1 FROM machines WHERE org_id = ? AND name = ?",
    ),
    machineHasInstances: prepareValue<MachineParams, number>(
      "SELECT 1 FROM instances WHERE org_id = ? AND machine_name = ? LIMIT 1",
    ),
    deleteVersionsOfMachine: prepare<MachineParams>(
      "DELETE FROM machine_versions WHERE org_id = ? AND machine_name = ?",
    ),
    deleteUploadsOfMachine: prepare<MachineParams>(
      "DELETE FROM code_uploads WHERE org_id = ? AND machine_name = ?",
    ),
    deleteMachine: prepare<MachineParams>("DELETE FROM machines WHERE org_id = ? AND name = ?"),

    insertVersion: prepare<
      [
        orgId: string,
        machineName: string,
        id: string,
        code: string,
        hash: string,
        clientInfo: string | null,
        indexSelectors: string | null,
        createdAt: number,
      ]
    >(
      `INSERT INTO machine_versions
         (org_id, machine_name, id, code, hash, client_info, index_selectors, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    selectVersion: prepare<[orgId: string, machineName: string, id: string], VersionRow>(
      `SELECT id, org_id AS orgId, machine_name AS machineName, code, hash,
         client_info AS clientInfo, index_selectors AS indexSelectors, created_at AS createdAt
       FROM machine_versions WHERE org_id = ? AND machine_name = ? AND id = ?`,
    ),
    versionExists: prepareValue<[...MachineParams, id: string], number>(
      "SELECT 1 FROM machine_versions WHERE org_id = ? AND machine_name = ? AND id = ?",
    ),
    selectVersionInfo: prepare<[...MachineParams, id: string], VersionInfoRow>(
      `SELECT id, client_info AS clientInfo, created_at AS createdAt
       FROM machine_versions WHERE org_id = ? AND machine_name = ? AND id = ?`,
    ),
    listVersions: preparePaged<
      MachineParams,
      [afterCreatedAt: number, afterId: string],
      VersionInfoRow
    >(
      `SELECT id, client_info AS clientInfo, created_at AS createdAt
       FROM machine_versions WHERE org_id = ? AND machine_name = ? {after}
       ORDER BY created_at, id LIMIT ?`,
      "(created_at, id) > (?, ?)",
    ),

    insertUpload: prepare<[...MachineParams, id: string, code: string, createdAt: number]>(
      `INSERT INTO code_uploads (org_id, machine_name, id, code, created_at)
       VALUES (?, ?, ?, ?, ?)`,
    ),
    selectUpload: prepare<[...MachineParams, id: string], CodeUploadRecord>(
      `SELECT org_id AS orgId, machine_name AS machineName, id, code, created_at AS createdAt
       FROM code_uploads WHERE org_id = ? AND machine_name = ? AND id = ?`,
    ),
    deleteUpload: prepare<[...MachineParams, id: string]>(
      "DELETE FROM code_uploads WHERE org_id = ? AND machine_name = ? AND id = ?",
    ),
    purgeUploads: prepare<[before: number]>("DELETE FROM code_uploads WHERE created_at < ?"),
    leaseServices: prepare<
      [orgId: string, machineName: string, instanceName: string, nodeId: string, until: number]
    >(
      `INSERT INTO service_leases (org_id, machine_name, instance_name, node_id, until)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (org_id, machine_name, instance_name, node_id) DO UPDATE SET until = excluded.until`,
    ),
    endServiceLease: prepare<
      [orgId: string, machineName: string, instanceName: string, nodeId: string]
    >(
      `DELETE FROM service_leases
       WHERE org_id = ? AND machine_name = ? AND instance_name = ? AND node_id = ?`,
    ),
    purgeServiceLeases: prepare<[before: number]>("DELETE FROM service_leases WHERE until < ?"),
    serviceLeasedElsewhere: prepareValue<
      [orgId: string, machineName: string, instanceName: string, nodeId: string, now: number],
      number
    >(
      `SELECT 1 FROM service_leases
       WHERE org_id = ? AND machine_name = ? AND instance_name = ? AND node_id <> ? AND until > ?
       LIMIT 1`,
    ),

    selectInstance: prepare<KeyParams, InstanceRow>(
      `SELECT ${INSTANCE_COLUMNS} FROM instances WHERE org_id = ? AND machine_name = ? AND name = ?`,
    ),
    insertInstance: prepare<
      [
        ...KeyParams,
        machineVersionId: string,
        snapshot: string,
        sequence: number,
        pendingServices: string,
        createdAt: number,
        updatedAt: number,
      ]
    >(
      `INSERT INTO instances (org_id, machine_name, name, machine_version_id, snapshot, status,
         sequence, pending_services, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
    ),
    // The optimistic single-writer check: the row changes only if it is still as it was read
    // (nobody committed, paused it or changed its pending services since) and running. The key
    // columns make an id from another org (or instance) match nothing.
    updateInstance: prepare<
      [
        machineVersionId: string,
        snapshot: string,
        sequence: number,
        pendingServices: string,
        updatedAt: number,
        id: number,
        ...KeyParams,
        expectedSequence: number,
        expectedPendingServices: string,
      ]
    >(
      `UPDATE instances SET machine_version_id = ?, snapshot = ?, sequence = ?,
         pending_services = ?, updated_at = ?
       WHERE id = ? AND org_id = ? AND machine_name = ? AND name = ? AND sequence = ?
         AND status = 'running' AND pending_services = ?`,
    ),
    instanceExists: prepareValue<[id: number], number>("SELECT 1 FROM instances WHERE id = ?"),
    selectInstanceId: prepareValue<KeyParams, number>(
      "SELECT id FROM instances WHERE org_id = ? AND machine_name = ? AND name = ?",
    ),
    listInstances: preparePaged<MachineParams, [afterName: string], InstanceSummaryRow>(
      `SELECT i.name, i.status, i.created_at AS createdAt, v.id AS versionId,
         v.client_info AS versionClientInfo, v.created_at AS versionCreatedAt
       FROM instances i JOIN machine_versions v
         ON v.org_id = i.org_id AND v.machine_name = i.machine_name AND v.id = i.machine_version_id
       WHERE i.org_id = ? AND i.machine_name = ? {after}
       ORDER BY i.name LIMIT ?`,
      "i.name > ?",
    ),
    deleteInstance: prepare<[id: number]>("DELETE FROM instances WHERE id = ?"),
    queueHistoryPurge: prepare<[instanceId: number]>(
      "INSERT INTO history_purges (instance_id) VALUES (?)",
    ),
    nextHistoryPurge: prepareValue<[], number>(
      "SELECT instance_id FROM history_purges ORDER BY instance_id LIMIT 1",
    ),
    // The first rows by the primary key: a chunk reads no more of the history than it deletes.
    deleteHistoryChunk: prepare<[instanceId: number, instanceId: number, limit: number]>(
      `DELETE FROM transitions WHERE instance_id = ? AND sequence IN (
         SELECT sequence FROM transitions WHERE instance_id = ? ORDER BY sequence LIMIT ?)`,
    ),
    endHistoryPurge: prepare<[instanceId: number]>(
      "DELETE FROM history_purges WHERE instance_id = ?",
    ),
    deleteTimersOfInstance: prepare<[instanceId: number]>(
      "DELETE FROM timers WHERE instance_id = ?",
    ),
    setStatus: prepare<[status: string, ...KeyParams]>(
      "UPDATE instances SET status = ? WHERE org_id = ? AND machine_name = ? AND name = ?",
    ),
    setPendingServices: prepare<
      [
        pendingServices: string,
        id: number,
        expectedSequence: number,
        expectedPendingServices: string,
        expectedStatus: string,
      ]
    >(
      "UPDATE instances SET pending_services = ? WHERE id = ? AND sequence = ? AND pending_services = ? AND status = ?",
    ),

    insertTransition: prepare<
      [instanceId: number, sequence: number, event: string, state: string, createdAt: number]
    >(
      `INSERT INTO transitions (instance_id, sequence, event, state, created_at)
       VALUES (?, ?, ?, ?, ?)`,
    ),
    // A page stops after the row that brings its events and states to maxBytes (see Store).
    selectTransitions: prepare<
      [...KeyParams, afterSequence: number, limit: number, maxBytes: number],
      TransitionRecord
    >(
      `WITH page AS (
         SELECT t.instance_id, t.sequence, octet_length(t.event) + octet_length(t.state) AS size
         FROM transitions t JOIN instances i ON i.id = t.instance_id
         WHERE i.org_id = ? AND i.machine_name = ? AND i.name = ? AND t.sequence > ?
         ORDER BY t.sequence LIMIT ?
       ), kept AS (
         SELECT instance_id, sequence, sum(size) OVER (ORDER BY sequence) - size AS before
         FROM page
       )
       SELECT t.sequence, t.event, t.state, t.created_at AS createdAt
       FROM kept JOIN transitions t USING (instance_id, sequence)
       WHERE kept.before < ?
       ORDER BY t.sequence`,
    ),
    selectTransitionsNewestFirst: prepare<
      [...KeyParams, beforeSequence: number, limit: number, maxBytes: number],
      TransitionRecord
    >(
      `WITH page AS (
         SELECT t.instance_id, t.sequence, octet_length(t.event) + octet_length(t.state) AS size
         FROM transitions t JOIN instances i ON i.id = t.instance_id
         WHERE i.org_id = ? AND i.machine_name = ? AND i.name = ? AND t.sequence < ?
         ORDER BY t.sequence DESC LIMIT ?
       ), kept AS (
         SELECT instance_id, sequence, sum(size) OVER (ORDER BY sequence DESC) - size AS before
         FROM page
       )
       SELECT t.sequence, t.event, t.state, t.created_at AS createdAt
       FROM kept JOIN transitions t USING (instance_id, sequence)
       WHERE kept.before < ?
       ORDER BY t.sequence DESC`,
    ),

    insertTimer: prepare<
      [
        instanceId: number,
        orgId: string,
        key: string,
        dueAt: number,
        event: string,
        detached: number,
      ]
    >(
      "INSERT INTO timers (instance_id, org_id, key, due_at, event, detached) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    instancesWithPendingServices: prepare<
      [afterId: number, limit: number],
      { id: number; orgId: string; machineName: string; instanceName: string }
    >(
      `SELECT id, org_id AS orgId, machine_name AS machineName, name AS instanceName
       FROM instances WHERE id > ? AND status = 'running' AND pending_services <> '[]'
       ORDER BY id LIMIT ?`,
    ),
    deleteTimersByKey: prepare<[instanceId: number, key: string]>(
      "DELETE FROM timers WHERE instance_id = ? AND key = ?",
    ),
    // The key's one timer a cancel reaches (see TimerToArm).
    deleteAttachedTimer: prepare<[instanceId: number, key: string]>(
      "DELETE FROM timers WHERE instance_id = ? AND key = ? AND detached = 0",
    ),
    detachTimer: prepare<[instanceId: number, key: string]>(
      "UPDATE timers SET detached = 1 WHERE instance_id = ? AND key = ? AND detached = 0",
    ),
    deleteTimerOfInstance: prepare<[id: number, instanceId: number]>(
      "DELETE FROM timers WHERE id = ? AND instance_id = ?",
    ),
    earliestUnclaimedDue: prepareValue<[], number>(
      "SELECT due_at FROM timers WHERE claimed_until IS NULL ORDER BY due_at LIMIT 1",
    ),
    // A leased timer becomes claimable again when both its due time and its lease have passed.
    earliestLeaseEnd: prepareValue<[], number | null>(
      "SELECT MIN(MAX(due_at, claimed_until)) FROM timers WHERE claimed_until IS NOT NULL",
    ),
    // A claim (fair-timer-claims.ts) reads the claimable due timers first, up to a bound; only
    // when there are that many does it go org by org: the orgs that have timers, found one index
    // seek each, then each org's earliest claimable due timers.
    claimableDue: prepare<
      [now: number, now: number, limit: number],
      { id: number; dueAt: number; orgId: string }
    >(
      `SELECT id, due_at AS dueAt, org_id AS orgId FROM timers INDEXED BY timers_by_due_at
       WHERE due_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) LIMIT ?`,
    ),
    firstTimerOrg: prepareValue<[], string | null>("SELECT min(org_id) FROM timers"),
    nextTimerOrg: prepareValue<[after: string], string | null>(
      "SELECT min(org_id) FROM timers WHERE org_id > ?",
    ),
    // Named: for the GROUP BY, SQLite would rather walk every timer in org order than the few
    // under lease.
    leasedTimersByOrg: prepare<[now: number], { orgId: string; leased: number }>(
      `SELECT org_id AS orgId, count(*) AS leased
       FROM timers INDEXED BY timers_by_claimed_until
       WHERE claimed_until > ? GROUP BY org_id`,
    ),
    claimableOfOrg: prepare<
      [orgId: string, now: number, now: number, limit: number],
      { id: number; dueAt: number }
    >(
      `SELECT id, due_at AS dueAt FROM timers
       WHERE org_id = ? AND due_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
       ORDER BY due_at, id LIMIT ?`,
    ),
    dueTimerById: prepare<[id: number], DueTimerRow>(
      `SELECT t.id, t.instance_id AS instanceId, t.key, t.due_at AS dueAt, t.event, t.attempts,
         i.org_id AS orgId, i.machine_name AS machineName, i.name AS instanceName
       FROM timers t JOIN instances i ON i.id = t.instance_id
       WHERE t.id = ?`,
    ),
    leaseTimer: prepare<[claimedUntil: number, id: number]>(
      "UPDATE timers SET claimed_until = ? WHERE id = ?",
    ),
    // A failed delivery's record, made only while its claim still holds the timer.
    retryClaimedTimer: prepare<[dueAt: number, id: number, claimedUntil: number]>(
      `UPDATE timers SET attempts = attempts + 1, claimed_until = NULL, due_at = ?
       WHERE id = ? AND claimed_until = ?`,
    ),
    dropClaimedTimer: prepare<[id: number, claimedUntil: number]>(
      "DELETE FROM timers WHERE id = ? AND claimed_until = ?",
    ),
    releaseTimerClaims: prepare<[]>(
      "UPDATE timers SET claimed_until = NULL WHERE claimed_until IS NOT NULL",
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
