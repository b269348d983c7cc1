// The PostgreSQL adapter of the storage port: a pg connection pool, shared by any number of nodes
// (each with its own store object) on one database.
import type { Pool, QueryResultRow } from "pg";
import { AlreadyExistsError, BackstateError, ConflictError, NotFoundError } from "../../errors.js";
import { CommitChains, type QueuedCommit } from "../commit-chains.js";
import { GroupCommitter } from "../group-commit.js";
import { findAdapterMigrationsDir, readMigrations } from "../migrations.js";
import {
  selectorsText,
  toInstanceRecord,
  toInstanceSummary,
  toKeyInfo,
  toKeyRecord,
  toMachineRecord,
  toMachineSummary,
  toMembership,
  toRole,
  toTimerRecord,
  toVersionInfo,
  toVersionRecord,
  type DueTimerRow,
  type InstanceRow,
  type InstanceSummaryRow,
  type KeyInfoRow,
  type KeyRow,
  type MachineRow,
  type MachineSummaryRow,
  type MembershipRow,
  type VersionInfoRow,
  type VersionRow,
} from "../rows.js";
import type {
  AdminSessionRecord,
  CodeUploadRecord,
  CommitResult,
  DeleteMachineResult,
  EpochMs,
  IdentityProviderId,
  IdentityProviderPosition,
  IdentityProviderRecord,
  InstanceKey,
  InstanceRecord,
  InstanceStatus,
  InstanceSummary,
  KeyInfo,
  KeyRecord,
  MachineRecord,
  MachineSummary,
  MachineVersionInfo,
  MachineVersionRecord,
  MakeCurrent,
  OrgMembership,
  OrgRecord,
  OrgRole,
  Page,
  Store,
  TimerRecord,
  TokenProviderRecord,
  TransitionCommit,
  TransitionPage,
  TransitionRecord,
  UserRecord,
  VersionPosition,
} from "../store.js";
import { commitBatchRunner, instanceText } from "./commit.js";
import { purgeHistoryChunk } from "./history-purge.js";
import {
  changes,
  inTransaction,
  insertUnique,
  isForeignKeyViolation,
  openPool,
  row,
  rows,
  toStoreError,
  type Queryable,
} from "./connection.js";
import { applyMigrations } from "./migrate.js";
import { ReadBatcher } from "./read-batch.js";
import { RecentAnswer } from "./recent-answer.js";
import { channelOf, encodeChange, originPrefix, payloads } from "./notices.js";
import { SQL, type Listing } from "./sql.js";
import * as providers from "./providers.js";
import { checkLimit, checkPurgeChunk, maxBytesOf } from "../page-checks.js";
import { FEW_DUE_TIMERS } from "../fair-timer-claims.js";

/** How long a health check's query may hold its connection (see ping). */
const PING_TIMEOUT_MS = 5_000;
/** An answer from the database this recent stands for a health check's own (see ping). */
const ANSWERED_RECENTLY_MS = 1_000;

export type PostgresStoreOptions = {
  /** A libpq-style URL, e.g. postgres://user:password@host:5432/database. */
  connectionString: string;
  /**
   * The schema the store's tables live in (every connection's search_path), created by
   * `migrate()` when missing: a lowercase identifier. Default: the connection's search_path.
   */
  schema?: string;
  /** The most connections this store opens. Default 10. */
  poolSize?: number;
  /** How long to wait for a connection before failing with `store-error`. Default 10000 ms. */
  connectionTimeoutMs?: number;
  /** The most commits one group-commit transaction takes. Default 64 (see below). */
  maxBatchSize?: number;
  /**
   * How many group-commit transactions may run at once. Default 2 with a pool of 6 or more
   * connections, else 1 (see below).
   */
  maxConcurrentBatches?: number;

  /** The folder of numbered .sql migrations. Default: the package's own. */
  migrationsDir?: string;
  /**
   * Names this node in the change notices its commits and deletes send (see notices.ts), so its
   * own update bus can tell them from other nodes'. Default "".
   */
  nodeId?: string;
};

export type PostgresStore = Store & {
  /** Counters for tests and metrics: `batches` is how many group-commit transactions ran. */
  readonly stats: { readonly batches: number };
  /** The `synchronous_commit` this store's sessions commit with (see synchronous-commit.ts). */
  synchronousCommit(): Promise<string>;
};

// When a commit of a batch fails with an error, the batch is applied again with each commit in a
// block of its own, that is a subtransaction with its own id (commit-function.ts). PostgreSQL
// keeps 64 of those per transaction in shared memory; past that, every other session taking a
// snapshot meanwhile has to look them up on disk. So a batch stays within 64.
const DEFAULT_MAX_BATCH_SIZE = 64;
const DEFAULT_CONCURRENT_BATCHES = 2;

/** Opens the connection pool (lazily: nothing connects yet); call `migrate()` before anything else. */
export function openPostgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStoreImpl(options);
}

// What exists only once migrations have run.
type Ready = { commits: GroupCommitter<QueuedCommit, CommitResult> };

class PostgresStoreImpl implements PostgresStore {
  readonly #pool: Pool;
  readonly #answers = new RecentAnswer();
  readonly #schema: string | undefined;
  readonly #migrationsDir: string;
  readonly #maxBatchSize: number;
  readonly #maxRowWaits: number;
  readonly #maxConcurrentBatches: number;
  readonly #notices: { channel: string; origin: string };
  readonly #chains = new CommitChains();
  // The lookups every request makes (its key, its instance), batched per turn of the event loop.
  readonly #keyReads: ReadBatcher<string, KeyRecord>;
  readonly #instanceReads: ReadBatcher<InstanceKey, InstanceRecord>;
  #ready: Ready | undefined;
  #closed = false;

  constructor(options: PostgresStoreOptions) {
    this.#schema = options.schema;
    this.#migrationsDir = options.migrationsDir ?? findAdapterMigrationsDir("postgres");
    this.#maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    checkPositive("maxBatchSize", this.#maxBatchSize);
    const poolSize = options.poolSize ?? 10;
    checkPositive("poolSize", poolSize);
    // A batch's round trip, which on a busy node includes waiting for its event loop to read the
    // answer, held up every commit queued behind it: a second batch meanwhile keeps PostgreSQL
    // working rather than waiting. Each holds a connection, so a small pool keeps to one.
    this.#maxConcurrentBatches =
      options.maxConcurrentBatches ?? (poolSize >= 6 ? DEFAULT_CONCURRENT_BATCHES : 1);
    checkPositive("maxConcurrentBatches", this.#maxConcurrentBatches);
    // Commits waiting for a locked row each hold a connection (up to LOCKED_ROW_WAIT_MS): half
    // the pool at most, less one for each batch beyond the first, so that ordinary batches and
    // reads keep connections of their own.
    this.#maxRowWaits = Math.max(1, Math.floor(poolSize / 2) - (this.#maxConcurrentBatches - 1));
    const connectionTimeoutMs = options.connectionTimeoutMs ?? 10_000;
    checkPositive("connectionTimeoutMs", connectionTimeoutMs);
    this.#notices = { channel: channelOf(options.schema), origin: options.nodeId ?? "" };
    originPrefix(this.#notices.origin);
    // Last: nothing above can throw after the pool exists.
    this.#pool = openPool({
      connectionString: options.connectionString,
      poolSize,
      connectionTimeoutMs,
      schema: options.schema,
    });
    const pool = this.#pool;
    const answers = this.#answers;
    this.#keyReads = new ReadBatcher({
      maxBatch: READ_BATCH,
      id: (keyId) => keyId,
      run: async (keyIds) => {
        const found = await answers.noted(
          keyIds.length === 1
            ? pool.query<KeyRow>({
                name: "bs_select_key",
                text: SQL.selectKey,
                values: keyIds,
              })
            : pool.query<KeyRow>({
                name: "bs_select_keys",
                text: SQL.selectKeys,
                values: [keyIds],
              }),
        );
        return new Map(found.rows.map((key) => [key.id, toKeyRecord(key)]));
      },
    });
    this.#instanceReads = new ReadBatcher({
      maxBatch: READ_BATCH,
      id: instanceId,
      run: async (keys) => {
        const found = await answers.noted(
          keys.length === 1
            ? pool.query<InstanceRow>({
                name: "bs_select_instance",
                text: SQL.selectInstance,
                values: [keys[0]!.orgId, keys[0]!.machineName, keys[0]!.instanceName],
              })
            : pool.query<InstanceRow>({
                name: "bs_select_instances",
                text: SQL.selectInstances,
                values: columnsOf(keys),
              }),
        );
        return new Map(found.rows.map((row) => [instanceId(row), toInstanceRecord(row)]));
      },
    });
  }

  get stats(): { batches: number } {
    return { batches: this.#ready?.commits.batches ?? 0 };
  }

  async migrate(): Promise<void> {
    this.#open();
    try {
      await applyMigrations(this.#pool, readMigrations(this.#migrationsDir), {
        schema: this.#schema,
      });
    } catch (error) {
      throw toStoreError(error);
    }
    if (this.#ready !== undefined) return;
    const commits = new GroupCommitter(
      commitBatchRunner(this.#pool, this.#notices, this.#maxRowWaits, () =>
        this.#answers.answered(),
      ),
      {
        maxBatchSize: this.#maxBatchSize,
        maxConcurrentBatches: this.#maxConcurrentBatches,
        // One instance's commits never run in two transactions at once: the next one is built
        // on the one before (commit-chains.ts), and must find it written, or know it failed.
        keyOf: (queued) => instanceText(queued.commit.instance),
        batchError: (cause) =>
          new BackstateError("store-error", "the group commit transaction failed", {
            cause: toStoreError(cause),
          }),
      },
    );
    this.#ready = { commits };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Commits already accepted are written, not dropped: their callers are still waiting.
    await this.#ready?.commits.drain();
    // Waits for the connections still in use (reads under way) to be given back.
    await this.#pool.end();
  }

  async ping(): Promise<void> {
    this.#readyOrThrow();
    // A busy node's connections may all be taken for longer than a health check waits: then the
    // statements they run, answered a moment ago or while the check's own query waits for a
    // connection, stand for it (recent-answer.ts).
    if (this.#answers.within(ANSWERED_RECENTLY_MS)) return;
    // Bounds how long a hung ping holds its connection; the health check has answered by then.
    const statement = { text: SQL.ping, query_timeout: PING_TIMEOUT_MS };
    const own = this.#run(async (db) => void (await this.#answers.noted(db.query(statement))));
    // Its own query still runs: a failure of it is not this ping's to report once another
    // statement was answered, and must not go unhandled.
    own.catch(() => {});
    await Promise.race([own, this.#answers.next()]);
  }

  synchronousCommit(): Promise<string> {
    return this.#run(async (db) => {
      const setting = await row<{ value: string }>(db, SQL.selectSynchronousCommit);
      if (setting === undefined) throw new Error("current_setting returned no row");
      return setting.value;
    });
  }

  ensureSetting(name: string, value: string): Promise<string> {
    return this.#run(async (db) => {
      await db.query(SQL.insertSetting, [name, value]);
      // A separate statement (a fresh snapshot): it sees the row whoever inserted it first.
      const stored = await row<{ value: string }>(db, SQL.selectSetting, [name]);
      // Settings are never deleted, so the row inserted (or found) just now is still there.
      if (stored === undefined) throw new BackstateError("store-error", `setting ${name} vanished`);
      return stored.value;
    });
  }

  createOrg(org: OrgRecord): Promise<void> {
    return this.#run((db) =>
      insertUnique(
        () => db.query(SQL.insertOrg, [org.id, org.name, org.createdAt]),
        `org ${org.id}`,
      ),
    );
  }

  getOrg(orgId: string): Promise<OrgRecord | undefined> {
    return this.#run((db) => row<OrgRecord>(db, SQL.selectOrg, [orgId]));
  }

  createUser(user: UserRecord): Promise<void> {
    return this.#run((db) =>
      insertUnique(
        () => db.query(SQL.insertUser, [user.id, user.name, user.createdAt]),
        `user ${user.id}`,
      ),
    );
  }

  getUser(userId: string): Promise<UserRecord | undefined> {
    return this.#run((db) => row<UserRecord>(db, SQL.selectUser, [userId]));
  }

  setOrgMember(orgId: string, userId: string, role: OrgRole, at: EpochMs): Promise<void> {
    return this.#run(async (db) => {
      if (!ORG_ROLES.includes(role)) throw new TypeError(`not an org role: ${String(role)}`);
      const upsert = () => db.query(SQL.upsertMember, [orgId, userId, role, at]);
      await insertUnique(upsert, `member ${userId}`, `org ${orgId} or user ${userId}`);
    });
  }

  getOrgRole(orgId: string, userId: string): Promise<OrgRole | undefined> {
    return this.#run(async (db) => {
      const found = await row<{ role: string }>(db, SQL.selectRole, [orgId, userId]);
      return found === undefined ? undefined : toRole(found.role);
    });
  }

  listOrgsOfUser(userId: string, page: Page): Promise<OrgMembership[]> {
    return this.#run(async (db) =>
      (
        await listPage<MembershipRow, string>(db, SQL.listOrgsOfUser, [userId], page, (after) => [
          after,
        ])
      ).map(toMembership),
    );
  }

  createAdminSession(session: AdminSessionRecord): Promise<void> {
    return this.#run((db) => {
      const { id, userId, secret, createdAt } = session;
      const insert = () => db.query(SQL.insertAdminSession, [id, userId, secret, createdAt]);
      return insertUnique(insert, `session ${id}`, `user ${userId}`);
    });
  }

  getAdminSession(sessionId: string): Promise<AdminSessionRecord | undefined> {
    return this.#run((db) => row<AdminSessionRecord>(db, SQL.selectAdminSession, [sessionId]));
  }

  deleteAdminSession(sessionId: string): Promise<boolean> {
    return this.#run(async (db) => (await changes(db, SQL.deleteAdminSession, [sessionId])) > 0);
  }

  createKey(key: KeyRecord): Promise<void> {
    return this.#run((db) => {
      const scopes = JSON.stringify(key.scopes);
      const insert = () =>
        db.query(SQL.insertKey, [key.id, key.orgId, key.name, key.secret, scopes, key.createdAt]);
      return insertUnique(insert, `key ${key.id}`, `org ${key.orgId}`);
    });
  }

  getKey(keyId: string): Promise<KeyRecord | undefined> {
    return this.#run(() => this.#keyReads.load(keyId));
  }

  deleteKey(orgId: string, keyId: string): Promise<boolean> {
    return this.#run(async (db) => (await changes(db, SQL.deleteKey, [orgId, keyId])) > 0);
  }

  listKeys(orgId: string, page: Page): Promise<KeyInfo[]> {
    return this.#run(async (db) =>
      (await listPage<KeyInfoRow, string>(db, SQL.listKeys, [orgId], page, (after) => [after])).map(
        toKeyInfo,
      ),
    );
  }

  createMachine(machine: {
    orgId: string;
    name: string;
    indexes?: string[];
    createdAt: EpochMs;
  }): Promise<void> {
    return this.#run((db) => {
      const { orgId, name, createdAt } = machine;
      const indexes = JSON.stringify(machine.indexes ?? []);
      const insert = () => db.query(SQL.insertMachine, [orgId, name, indexes, createdAt]);
      return insertUnique(insert, `machine ${name}`, `org ${orgId}`);
    });
  }

  getMachine(orgId: string, machineName: string): Promise<MachineRecord | undefined> {
    return this.#run(async (db) => {
      const found = await row<MachineRow>(db, SQL.selectMachine, [orgId, machineName]);
      return found && toMachineRecord(found);
    });
  }

  listMachines(orgId: string, page: Page): Promise<MachineSummary[]> {
    return this.#run(async (db) =>
      (
        await listPage<MachineSummaryRow, string>(db, SQL.listMachines, [orgId], page, (after) => [
          after,
        ])
      ).map(toMachineSummary),
    );
  }

  deleteMachine(orgId: string, machineName: string): Promise<DeleteMachineResult> {
    const scope = [orgId, machineName];
    return this.#run(async () => {
      try {
        return await inTransaction(this.#pool, async (client): Promise<DeleteMachineResult> => {
          // Waits for, then keeps out, any version or upload being added to the machine.
          if ((await row(client, SQL.lockMachineForDelete, scope)) === undefined) {
            return "not-found";
          }
          if ((await row(client, SQL.machineHasInstances, scope)) !== undefined) {
            return "has-instances";
          }
          // The machine refers to its current version: let go of it before the versions go.
          await client.query(SQL.setCurrentVersion, [...scope, null]);
          await client.query(SQL.deleteVersionsOfMachine, scope);
          await client.query(SQL.deleteUploadsOfMachine, scope);
          await client.query(SQL.deleteMachine, scope);
          return "deleted";
        });
      } catch (error) {
        // An instance created since the check (by any node) still refers to a version: the
        // deletes were refused and rolled back, so nothing changed.
        if (isForeignKeyViolation(error)) return "has-instances";
        throw error;
      }
    });
  }

  createMachineVersion(version: MachineVersionRecord, makeCurrent: MakeCurrent): Promise<void> {
    const { orgId, machineName, id } = version;
    return this.#run(() =>
      // One transaction: a version made current is never visible half-stored, or vice versa, and
      // the upload it came from is gone exactly when the version exists.
      inTransaction(this.#pool, async (client) => {
        if ((await row(client, SQL.lockMachineForAdding, [orgId, machineName])) === undefined) {
          throw new NotFoundError(`machine ${machineName} not found`);
        }
        const insert = () =>
          client.query(SQL.insertVersion, [
            orgId,
            machineName,
            id,
            version.code,
            version.hash,
            version.clientInfo ?? null,
            selectorsText(version),
            version.createdAt,
          ]);
        await insertUnique(insert, `version ${id}`, `machine ${machineName}`);
        // The machine's row is locked (above): "if-none" sees the current version as it stands.
        if (makeCurrent === "if-none") {
          await client.query(SQL.setCurrentVersionIfNone, [orgId, machineName, id]);
        } else if (makeCurrent) {
          await client.query(SQL.setCurrentVersion, [orgId, machineName, id]);
        }
        // Its upload is finalized: the code now lives in the version.
        await client.query(SQL.deleteUpload, [orgId, machineName, id]);
      }),
    );
  }

  getMachineVersion(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionRecord | undefined> {
    return this.#run(async (db) => {
      const found = await row<VersionRow>(db, SQL.selectVersion, [orgId, machineName, versionId]);
      return found && toVersionRecord(found);
    });
  }

  getMachineVersionInfo(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionInfo | undefined> {
    return this.#run(async (db) => {
      const scope = [orgId, machineName, versionId];
      const found = await row<VersionInfoRow>(db, SQL.selectVersionInfo, scope);
      return found && toVersionInfo(found);
    });
  }

  listMachineVersions(
    orgId: string,
    machineName: string,
    page: Page<VersionPosition>,
  ): Promise<MachineVersionInfo[]> {
    return this.#run(async (db) =>
      (
        await listPage<VersionInfoRow, VersionPosition>(
          db,
          SQL.listVersions,
          [orgId, machineName],
          page,
          (after) => [after.createdAt, after.id],
        )
      ).map(toVersionInfo),
    );
  }

  putCodeUpload(upload: CodeUploadRecord): Promise<void> {
    const { orgId, machineName, id, code, createdAt } = upload;
    return this.#run(() =>
      inTransaction(this.#pool, async (client) => {
        // The machine's lock: a finalize cannot turn the id into a version between the check
        // and the insert (it takes the same lock), on this node or any other.
        if ((await row(client, SQL.lockMachineForAdding, [orgId, machineName])) === undefined) {
          throw new NotFoundError(`machine ${machineName} not found`);
        }
        // The upload of a finalized version is gone, but its id stays used.
        if ((await row(client, SQL.versionExists, [orgId, machineName, id])) !== undefined) {
          throw new AlreadyExistsError(`version ${id} already exists`);
        }
        const insert = () =>
          client.query(SQL.insertUpload, [orgId, machineName, id, code, createdAt]);
        await insertUnique(insert, `upload ${id}`, `machine ${machineName}`);
      }),
    );
  }

  getCodeUpload(
    orgId: string,
    machineName: string,
    id: string,
  ): Promise<CodeUploadRecord | undefined> {
    return this.#run((db) => row<CodeUploadRecord>(db, SQL.selectUpload, [orgId, machineName, id]));
  }

  purgeCodeUploads(before: EpochMs): Promise<number> {
    return this.#run((db) => changes(db, SQL.purgeUploads, [before]));
  }

  loadInstance(key: InstanceKey): Promise<InstanceRecord | undefined> {
    return this.#run(() => this.#instanceReads.load(key));
  }

  commitTransition(commit: TransitionCommit): Promise<CommitResult> {
    let ready: Ready;
    try {
      ready = this.#readyOrThrow();
    } catch (error) {
      return Promise.reject(toStoreError(error));
    }
    // The committer settles it after the batch's transaction has ended.
    return this.#chains.submit(ready.commits, commit);
  }

  setInstanceStatus(key: InstanceKey, status: InstanceStatus): Promise<boolean> {
    const { orgId, machineName, instanceName } = key;
    if (status === "paused") return this.#pause(key);
    return this.#run(
      async (db) =>
        (await changes(db, SQL.setStatus, [status, orgId, machineName, instanceName])) > 0,
    );
  }

  /**
   * Pauses the instance and tells the other nodes, in the same transaction: the services its
   * steps started run on the nodes that took those steps, and each stops them when told (see
   * Engine.pausedElsewhere), as this node's engine stops its own.
   */
  #pause(key: InstanceKey): Promise<boolean> {
    return this.#run(() =>
      inTransaction(this.#pool, async (client) => {
        const scope = [key.orgId, key.machineName, key.instanceName];
        const paused = await row<{ id: number; sequence: number }>(
          client,
          SQL.pauseInstance,
          scope,
        );
        if (paused === undefined) return false;
        const { channel, origin } = this.#notices;
        // The row's id, so that a node hearing it late stops nothing of an instance made since.
        const { id: instanceId, sequence } = paused;
        const change = encodeChange({ kind: "paused", key, sequence, instanceId });
        const [payload] = payloads(origin, [change]);
        await client.query(SQL.notify, [channel, payload]);
        return true;
      }),
    );
  }

  listInstances(orgId: string, machineName: string, page: Page): Promise<InstanceSummary[]> {
    return this.#run(async (db) =>
      (
        await listPage<InstanceSummaryRow, string>(
          db,
          SQL.listInstances,
          [orgId, machineName],
          page,
          (after) => [after],
        )
      ).map(toInstanceSummary),
    );
  }

  deleteInstance(key: InstanceKey): Promise<boolean> {
    return this.#run(() =>
      inTransaction(this.#pool, async (client) => {
        const scope = [key.orgId, key.machineName, key.instanceName];
        const found = await row<{ id: number }>(client, SQL.lockInstance, scope);
        if (found === undefined) return false;
        // Timers first: they refer to the instance row. The history is left to the purge.
        await client.query(SQL.deleteTimersOfInstance, [found.id]);
        await client.query(SQL.deleteInstance, [found.id]);
        await client.query(SQL.queueHistoryPurge, [found.id]);
        // Delivered to every listening node when (and only if) the delete commits.
        const { channel, origin } = this.#notices;
        // The row's id, so that a node hearing it late stops nothing of an instance made since.
        const change = encodeChange({ kind: "deleted", key, instanceId: found.id });
        const [payload] = payloads(origin, [change]);
        await client.query(SQL.notify, [channel, payload]);
        return true;
      }),
    );
  }

  purgeDeletedHistory(maxRows: number): Promise<number> {
    return this.#run(() => {
      checkPurgeChunk(maxRows);
      // Its own short transaction: the queue rows it takes stay locked only for this chunk.
      return inTransaction(this.#pool, (client) => purgeHistoryChunk(client, maxRows));
    });
  }

  setPendingServices(
    instanceId: number,
    pendingServices: string[],
    expected: { sequence: number; pendingServices: string[]; status: InstanceStatus },
  ): Promise<void> {
    return this.#run(async (db) => {
      const values = [
        JSON.stringify(pendingServices),
        instanceId,
        expected.sequence,
        JSON.stringify(expected.pendingServices),
        expected.status,
      ];
      if ((await changes(db, SQL.setPendingServices, values)) > 0) return;
      if ((await row(db, SQL.instanceExists, [instanceId])) === undefined) {
        throw new NotFoundError(`no instance with id ${instanceId}`);
      }
      throw new ConflictError(
        `instance ${instanceId} changed since its pending services were read`,
      );
    });
  }

  listTransitions(key: InstanceKey, page: TransitionPage): Promise<TransitionRecord[]> {
    return this.#run((db) => {
      checkLimit(page.limit);
      const { orgId, machineName, instanceName } = key;
      const maxBytes = maxBytesOf(page);
      if (page.newestFirst === true) {
        // Counting down: "after" is below the given sequence; no position starts at the latest.
        const before = page.afterSequence ?? Number.MAX_SAFE_INTEGER;
        return rows<TransitionRecord>(db, SQL.selectTransitionsNewestFirst, [
          orgId,
          machineName,
          instanceName,
          before,
          page.limit,
          maxBytes,
        ]);
      }
      const after = page.afterSequence ?? 0;
      return rows<TransitionRecord>(db, SQL.selectTransitions, [
        orgId,
        machineName,
        instanceName,
        after,
        page.limit,
        maxBytes,
      ]);
    });
  }

  nextTimerDue(): Promise<EpochMs | undefined> {
    return this.#run(async (db) => {
      const found = await row<{ dueAt: number | null }>(db, SQL.nextTimerDue);
      return found?.dueAt ?? undefined;
    });
  }

  leaseServices(nodeId: string, instances: readonly InstanceKey[], until: EpochMs): Promise<void> {
    return this.#run(async (db) => {
      if (instances.length === 0) return;
      await db.query(SQL.leaseServices, [...columnsOf(instances), nodeId, until]);
    });
  }

  endServiceLeases(
    nodeId: string,
    instances: readonly InstanceKey[],
    expiredBefore: EpochMs,
  ): Promise<void> {
    return this.#run(async (db) => {
      await db.query(SQL.endServiceLeases, [...columnsOf(instances), nodeId, expiredBefore]);
    });
  }

  servicesLeasedElsewhere(key: InstanceKey, nodeId: string, now: EpochMs): Promise<boolean> {
    return this.#run(async (db) => {
      const { orgId, machineName, instanceName } = key;
      const found = await row(db, SQL.serviceLeasedElsewhere, [
        orgId,
        machineName,
        instanceName,
        nodeId,
        now,
      ]);
      return found !== undefined;
    });
  }

  claimDueTimers(now: EpochMs, limit: number, leaseMs: number): Promise<TimerRecord[]> {
    return this.#run(async (db) => {
      checkLimit(limit);
      // At least 1 ms: each claim's lease end then differs from the one before it, and tells
      // which claim a failure is recorded by (recordTimerFailure).
      if (!Number.isInteger(leaseMs) || leaseMs < 1) {
        throw new TypeError("leaseMs must be an integer ≥ 1");
      }
      if (limit === 0) return [];
      const claimed = await rows<DueTimerRow>(db, SQL.claimTimers, [
        now,
        limit,
        now + leaseMs,
        FEW_DUE_TIMERS,
      ]);
      // RETURNING lists rows in no particular order: earliest due first, as they were picked.
      claimed.sort((a, b) => a.dueAt - b.dueAt || a.id - b.id);
      return claimed.map((row) => toTimerRecord(row, now + leaseMs));
    });
  }

  recordTimerFailure(
    timer: Pick<TimerRecord, "id" | "claimedUntil">,
    retryAt: EpochMs,
    drop: boolean,
  ): Promise<void> {
    return this.#run(async (db) => {
      if (drop) await db.query(SQL.dropClaimedTimer, [timer.id, timer.claimedUntil]);
      else await db.query(SQL.retryClaimedTimer, [retryAt, timer.id, timer.claimedUntil]);
    });
  }

  listInstancesWithPendingServices(
    afterId: number,
    limit: number,
  ): Promise<Array<InstanceKey & { id: number }>> {
    checkLimit(limit);
    return this.#run(async (db) =>
      (
        await rows<InstanceKey & { id: string }>(db, SQL.instancesWithPendingServices, [
          afterId,
          limit,
        ])
      ).map((found) => ({ ...found, id: Number(found.id) })),
    );
  }

  cancelTimers(instanceId: number, timerKeys: readonly string[]): Promise<void> {
    return this.#run(async (db) => {
      if (timerKeys.length > 0) await db.query(SQL.deleteTimersByKey, [instanceId, timerKeys]);
    });
  }

  // ---- token exchange: identity and token providers (providers.ts does the work) ----

  upsertIdentityProvider(idp: IdentityProviderRecord): Promise<void> {
    return this.#run((db) => providers.upsertIdentityProvider(db, idp));
  }

  listIdentityProviders(
    orgId: string,
    page: Page<IdentityProviderPosition>,
  ): Promise<IdentityProviderRecord[]> {
    return this.#run((db) => providers.listIdentityProviders(db, orgId, page));
  }

  findIdentityProviders(
    orgId: string,
    token: { audiences: readonly string[]; issuer: string | undefined },
  ): Promise<IdentityProviderRecord[]> {
    return this.#run((db) => providers.findIdentityProviders(db, orgId, token));
  }

  deleteIdentityProvider(orgId: string, id: IdentityProviderId): Promise<boolean> {
    return this.#run((db) => providers.deleteIdentityProvider(db, orgId, id));
  }

  upsertTokenProvider(provider: TokenProviderRecord): Promise<void> {
    return this.#run((db) => providers.upsertTokenProvider(db, provider));
  }

  getTokenProvider(orgId: string, service: string): Promise<TokenProviderRecord | undefined> {
    return this.#run((db) => providers.getTokenProvider(db, orgId, service));
  }

  listTokenProviders(orgId: string, page: Page): Promise<TokenProviderRecord[]> {
    return this.#run((db) => providers.listTokenProviders(db, orgId, page));
  }

  deleteTokenProvider(orgId: string, service: string): Promise<boolean> {
    return this.#run((db) => providers.deleteTokenProvider(db, orgId, service));
  }

  /** Runs `work` on the pool (one connection per statement), with errors turned into coded ones. */
  async #run<T>(work: (db: Queryable) => Promise<T>): Promise<T> {
    this.#readyOrThrow();
    try {
      return await work(this.#pool);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  #readyOrThrow(): Ready {
    this.#open();
    if (this.#ready === undefined) throw new TypeError("call migrate() before using the store");
    return this.#ready;
  }

  #open(): void {
    if (this.#closed) throw new TypeError("the store is closed");
  }
}

const ORG_ROLES: readonly OrgRole[] = ["admin", "write", "read"];

/** The most lookups one batched read statement takes. */
const READ_BATCH = 256;

/** An instance key's identity in a batch of lookups. */
function instanceId(key: InstanceKey): string {
  return JSON.stringify([key.orgId, key.machineName, key.instanceName]);
}

function checkPositive(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`${name} must be a positive integer`);
}

/** One page of a keyset-paged listing: `position` turns `page.after` into its parameters. */
async function listPage<R extends QueryResultRow, After>(
  db: Queryable,
  listing: Listing,
  scope: readonly unknown[],
  page: Page<After>,
  position: (after: After) => unknown[],
): Promise<R[]> {
  checkLimit(page.limit);
  if (page.limit === 0) return [];
  if (page.after === undefined) return rows<R>(db, listing.first, [...scope, page.limit]);
  return rows<R>(db, listing.after, [...scope, ...position(page.after), page.limit]);
}

/** Instance keys as three parallel arrays, for unnest(). */
function columnsOf(instances: readonly InstanceKey[]): [string[], string[], string[]] {
  return [
    instances.map((key) => key.orgId),
    instances.map((key) => key.machineName),
    instances.map((key) => key.instanceName),
  ];
}
