// Every SQL statement the SQLite adapter runs, prepared once per connection (after migrations,
// since preparing checks the tables exist). Columns are aliased to the record fields they fill.
import type Database from "better-sqlite3";
import type { OrgRecord, TransitionRecord } from "../store.js";

export type KeyRow = {
  id: string;
  orgId: string;
  name: string;
  secret: string;
  scopes: string;
  createdAt: number;
};
export type MachineRow = {
  orgId: string;
  name: string;
  currentVersionId: string | null;
  createdAt: number;
};
export type VersionRow = {
  id: string;
  orgId: string;
  machineName: string;
  code: string;
  hash: string;
  clientInfo: string | null;
  createdAt: number;
};
export type InstanceRow = {
  id: number;
  orgId: string;
  machineName: string;
  instanceName: string;
  machineVersionId: string;
  snapshot: string;
  status: string;
  sequence: number;
  pendingServices: string;
  createdAt: number;
  updatedAt: number;
};
export type DueTimerRow = {
  id: number;
  instanceId: number;
  key: string;
  dueAt: number;
  event: string;
  attempts: number;
  orgId: string;
  machineName: string;
  instanceName: string;
};

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

const INSTANCE_COLUMNS = `id, org_id AS orgId, machine_name AS machineName, name AS instanceName,
  machine_version_id AS machineVersionId, snapshot, status, sequence,
  pending_services AS pendingServices, created_at AS createdAt, updated_at AS updatedAt`;

export function prepareStatements(db: Database.Database) {
  const prepare = <P extends unknown[], R = unknown>(sql: string): Statement<P, R> =>
    db.prepare<P, R>(sql);
  // For a query of one column: rows come back as that column's value.
  const prepareValue = <P extends unknown[], R>(sql: string): Statement<P, R> =>
    db.prepare<P, R>(sql).pluck();
  return {
    insertOrg: prepare<[id: string, name: string, createdAt: number]>(
      "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
    ),
    selectOrg: prepare<[id: string], OrgRecord>(
      "SELECT id, name, created_at AS createdAt FROM orgs WHERE id = ?",
    ),

    insertKey: prepare<
      [id: string, orgId: string, name: string, secret: string, scopes: string, createdAt: number]
    >("INSERT INTO keys (id, org_id, name, secret, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
    selectKey: prepare<[id: string], KeyRow>(
      `SELECT id, org_id AS orgId, name, secret, scopes, created_at AS createdAt
       FROM keys WHERE id = ?`,
    ),
    deleteKey: prepare<[orgId: string, id: string]>("DELETE FROM keys WHERE org_id = ? AND id = ?"),

    insertMachine: prepare<[orgId: string, name: string, createdAt: number]>(
      "INSERT INTO machines (org_id, name, created_at) VALUES (?, ?, ?)",
    ),
    selectMachine: prepare<[orgId: string, name: string], MachineRow>(
      `SELECT org_id AS orgId, name, current_version_id AS currentVersionId, created_at AS createdAt
       FROM machines WHERE org_id = ? AND name = ?`,
    ),
    setCurrentVersion: prepare<[versionId: string, orgId: string, name: string]>(
      "UPDATE machines SET current_version_id = ? WHERE org_id = ? AND name = ?",
    ),

    insertVersion: prepare<
      [
        orgId: string,
        machineName: string,
        id: string,
        code: string,
        hash: string,
        clientInfo: string | null,
        createdAt: number,
      ]
    >(
      `INSERT INTO machine_versions (org_id, machine_name, id, code, hash, client_info, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    selectVersion: prepare<[orgId: string, machineName: string, id: string], VersionRow>(
      `SELECT id, org_id AS orgId, machine_name AS machineName, code, hash,
         client_info AS clientInfo, created_at AS createdAt
       FROM machine_versions WHERE org_id = ? AND machine_name = ? AND id = ?`,
    ),
    versionExists: prepareValue<[orgId: string, machineName: string, id: string], number>(
      "SELECT 1 FROM machine_versions WHERE org_id = ? AND machine_name = ? AND id = ?",
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
    // The optimistic single-writer check: the row changes only if nobody committed since it was
    // read. The key columns make an id from another org (or instance) match nothing.
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
      ]
    >(
      `UPDATE instances SET machine_version_id = ?, snapshot = ?, sequence = ?,
         pending_services = ?, updated_at = ?
       WHERE id = ? AND org_id = ? AND machine_name = ? AND name = ? AND sequence = ?`,
    ),
    setStatus: prepare<[status: string, ...KeyParams]>(
      "UPDATE instances SET status = ? WHERE org_id = ? AND machine_name = ? AND name = ?",
    ),
    setPendingServices: prepare<[pendingServices: string, id: number]>(
      "UPDATE instances SET pending_services = ? WHERE id = ?",
    ),

    insertTransition: prepare<
      [instanceId: number, sequence: number, event: string, state: string, createdAt: number]
    >(
      `INSERT INTO transitions (instance_id, sequence, event, state, created_at)
       VALUES (?, ?, ?, ?, ?)`,
    ),
    selectTransitions: prepare<
      [...KeyParams, afterSequence: number, limit: number],
      TransitionRecord
    >(
      `SELECT t.sequence, t.event, t.state, t.created_at AS createdAt
       FROM transitions t JOIN instances i ON i.id = t.instance_id
       WHERE i.org_id = ? AND i.machine_name = ? AND i.name = ? AND t.sequence > ?
       ORDER BY t.sequence LIMIT ?`,
    ),

    insertTimer: prepare<[instanceId: number, key: string, dueAt: number, event: string]>(
      "INSERT INTO timers (instance_id, key, due_at, event) VALUES (?, ?, ?, ?)",
    ),
    deleteTimerByKey: prepare<[instanceId: number, key: string]>(
      "DELETE FROM timers WHERE instance_id = ? AND key = ?",
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
    selectClaimable: prepare<[now: number, now: number, limit: number], DueTimerRow>(
      `SELECT t.id, t.instance_id AS instanceId, t.key, t.due_at AS dueAt, t.event, t.attempts,
         i.org_id AS orgId, i.machine_name AS machineName, i.name AS instanceName
       FROM timers t JOIN instances i ON i.id = t.instance_id
       WHERE t.due_at <= ? AND (t.claimed_until IS NULL OR t.claimed_until <= ?)
       ORDER BY t.due_at, t.id LIMIT ?`,
    ),
    leaseTimer: prepare<[claimedUntil: number, id: number]>(
      "UPDATE timers SET claimed_until = ? WHERE id = ?",
    ),
    retryTimer: prepare<[dueAt: number, id: number]>(
      `UPDATE timers SET attempts = attempts + 1, claimed_until = NULL, due_at = ?
       WHERE id = ?`,
    ),
    deleteTimer: prepare<[id: number]>("DELETE FROM timers WHERE id = ?"),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
