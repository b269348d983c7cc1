// The embedded SQLite adapter of the storage port: better-sqlite3 on one file (or in memory).
import type Database from "better-sqlite3";
import { AlreadyExistsError, BackstateError, ConflictError, NotFoundError } from "../../errors.js";
import { CommitChains, type QueuedCommit } from "../commit-chains.js";
import { GroupCommitter } from "../group-commit.js";
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
import { commitBatchRunner } from "./commit.js";
import { openConnection } from "./connection.js";
import { applyMigrations, readMigrations } from "./migrate.js";
import { findMigrationsDir } from "./migrations-dir.js";
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
  toVersionInfo,
  toVersionRecord,
} from "../rows.js";
import { insertUnique, toStoreError } from "./sqlite-errors.js";
import { prepareStatements, type Paged, type Statements } from "./statements.js";
import { nextTimerDue, timerClaimer } from "./timers.js";
import { SqliteProviders } from "./providers.js";
import { checkLimit, checkPurgeChunk, maxBytesOf } from "../page-checks.js";
import { purgeHistoryChunk } from "./history-purge.js";

export type SqliteStoreOptions = {
  /** The database file (its folder is created if missing), or ":memory:" for a private one. */
  path: string;
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** The most commits one group-commit transaction takes. Default 512. */
  maxBatchSize?: number;
  /** The folder of numbered .sql migrations. Default: the package's own. */
  migrationsDir?: string;
};

export type SqliteStore = Store & {
  /** Counters for tests and metrics: `batches` is how many group-commit transactions ran. */
  readonly stats: { readonly batches: number };
};

/** What openSqliteStore gives: the store, and what only the data dir's owner may do with it. */
export type OwnedSqliteStore = SqliteStore & {
  /**
   * Lets go of every timer claim, so claimed timers are due again at their own time. Only for a
   * process that knows no other one uses the file (it holds the data dir's claim) and has not
   * started claiming: the claims are then a dead process's.
   */
  releaseTimerClaims(): Promise<void>;
};

/** Opens the database; call `migrate()` before anything else. */
export function openSqliteStore(options: SqliteStoreOptions): OwnedSqliteStore {
  return new SqliteStoreImpl(options);
}

// What exists only once migrations have run (preparing a statement checks its tables exist).
type Ready = {
  s: Statements;
  claim: ReturnType<typeof timerClaimer>;
  commits: GroupCommitter<QueuedCommit, CommitResult>;
  providers: SqliteProviders;
};

class SqliteStoreImpl implements OwnedSqliteStore {
  readonly #db: Database.Database;
  readonly #migrationsDir: string;
  readonly #maxBatchSize: number;
  #ready: Ready | undefined;
  #closed = false;
  readonly #chains = new CommitChains();

  constructor(options: SqliteStoreOptions) {
    this.#migrationsDir = options.migrationsDir ?? findMigrationsDir();
    this.#maxBatchSize = options.maxBatchSize ?? 512;
    if (!Number.isInteger(this.#maxBatchSize) || this.#maxBatchSize < 1) {
      throw new TypeError("maxBatchSize must be a positive integer");
    }
    // Last: nothing above can throw after the file has been opened.
    this.#db = openConnection({ path: options.path, busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
  }

  get stats(): { batches: number } {
    return { batches: this.#ready?.commits.batches ?? 0 };
  }

  migrate(): Promise<void> {
    return this.#attempt(() => {
      this.#open();
      applyMigrations(this.#db, readMigrations(this.#migrationsDir));
      if (this.#ready !== undefined) return;
      const s = prepareStatements(this.#db);
      const commits = new GroupCommitter(commitBatchRunner(this.#db, s), {
        maxBatchSize: this.#maxBatchSize,
        batchError: (cause) =>
          new BackstateError("store-error", "the group commit transaction failed", {
            cause: toStoreError(cause),
          }),
      });
      const providers = new SqliteProviders(this.#db);
      this.#ready = { s, claim: timerClaimer(this.#db, s), commits, providers };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Commits already accepted are written, not dropped: their callers are still waiting.
    await this.#ready?.commits.drain();
    this.#db.close();
  }

  ping(): Promise<void> {
    return this.#run(({ s }) => void s.ping.get());
  }

  ensureSetting(name: string, value: string): Promise<string> {
    return this.#run(({ s }) => {
      s.insertSetting.run(name, value);
      const stored = s.selectSetting.get(name);
      // Settings are never deleted, so the row inserted (or found) just now is still there.
      if (stored === undefined) throw new BackstateError("store-error", `setting ${name} vanished`);
      return stored;
    });
  }

  createOrg(org: OrgRecord): Promise<void> {
    return this.#run(({ s }) => {
      insertUnique(() => s.insertOrg.run(org.id, org.name, org.createdAt), `org ${org.id}`);
    });
  }

  getOrg(orgId: string): Promise<OrgRecord | undefined> {
    return this.#run(({ s }) => s.selectOrg.get(orgId));
  }

  createUser(user: UserRecord): Promise<void> {
    return this.#run(({ s }) => {
      insertUnique(() => s.insertUser.run(user.id, user.name, user.createdAt), `user ${user.id}`);
    });
  }

  getUser(userId: string): Promise<UserRecord | undefined> {
    return this.#run(({ s }) => s.selectUser.get(userId));
  }

  setOrgMember(orgId: string, userId: string, role: OrgRole, at: EpochMs): Promise<void> {
    return this.#run(({ s }) => {
      if (!ORG_ROLES.includes(role)) throw new TypeError(`not an org role: ${String(role)}`);
      const upsert = () => s.upsertMember.run(orgId, userId, role, at, at);
      insertUnique(upsert, `member ${userId}`, `org ${orgId} or user ${userId}`);
    });
  }

  getOrgRole(orgId: string, userId: string): Promise<OrgRole | undefined> {
    return this.#run(({ s }) => {
      const role = s.selectRole.get(orgId, userId);
      return role === undefined ? undefined : toRole(role);
    });
  }

  listOrgsOfUser(userId: string, page: Page): Promise<OrgMembership[]> {
    return this.#run(({ s }) =>
      listPage(s.listOrgsOfUser, [userId], page, (after) => [after]).map(toMembership),
    );
  }

  createAdminSession(session: AdminSessionRecord): Promise<void> {
    return this.#run(({ s }) => {
      const { id, userId, secret, createdAt } = session;
      const insert = () => s.insertAdminSession.run(id, userId, secret, createdAt);
      insertUnique(insert, `session ${id}`, `user ${userId}`);
    });
  }

  getAdminSession(sessionId: string): Promise<AdminSessionRecord | undefined> {
    return this.#run(({ s }) => s.selectAdminSession.get(sessionId));
  }

  deleteAdminSession(sessionId: string): Promise<boolean> {
    return this.#run(({ s }) => s.deleteAdminSession.run(sessionId).changes > 0);
  }

  createKey(key: KeyRecord): Promise<void> {
    return this.#run(({ s }) => {
      const scopes = JSON.stringify(key.scopes);
      const insert = () =>
        s.insertKey.run(key.id, key.orgId, key.name, key.secret, scopes, key.createdAt);
      insertUnique(insert, `key ${key.id}`, `org ${key.orgId}`);
    });
  }

  getKey(keyId: string): Promise<KeyRecord | undefined> {
    return this.#run(({ s }) => {
      const row = s.selectKey.get(keyId);
      return row && toKeyRecord(row);
    });
  }

  deleteKey(orgId: string, keyId: string): Promise<boolean> {
    return this.#run(({ s }) => s.deleteKey.run(orgId, keyId).changes > 0);
  }

  listKeys(orgId: string, page: Page): Promise<KeyInfo[]> {
    return this.#run(({ s }) =>
      listPage(s.listKeys, [orgId], page, (after) => [after]).map(toKeyInfo),
    );
  }

  createMachine(machine: {
    orgId: string;
    name: string;
    indexes?: string[];
    createdAt: EpochMs;
  }): Promise<void> {
    return this.#run(({ s }) => {
      const { orgId, name, createdAt } = machine;
      const indexes = JSON.stringify(machine.indexes ?? []);
      const insert = () => s.insertMachine.run(orgId, name, indexes, createdAt);
      insertUnique(insert, `machine ${name}`, `org ${orgId}`);
    });
  }

  getMachine(orgId: string, machineName: string): Promise<MachineRecord | undefined> {
    return this.#run(({ s }) => {
      const row = s.selectMachine.get(orgId, machineName);
      return row && toMachineRecord(row);
    });
  }

  listMachines(orgId: string, page: Page): Promise<MachineSummary[]> {
    return this.#run(({ s }) =>
      listPage(s.listMachines, [orgId], page, (after) => [after]).map(toMachineSummary),
    );
  }

  deleteMachine(orgId: string, machineName: string): Promise<DeleteMachineResult> {
    return this.#run(({ s }) =>
      // IMMEDIATE: no instance can be created (by any process) between the check and the deletes.
      this.#db
        .transaction((): DeleteMachineResult => {
          if (s.machineExists.get(orgId, machineName) === undefined) return "not-found";
          if (s.machineHasInstances.get(orgId, machineName) !== undefined) return "has-instances";
          // The machine refers to its current version: let go of it before the versions go.
          s.setCurrentVersion.run(null, orgId, machineName);
          s.deleteVersionsOfMachine.run(orgId, machineName);
          s.deleteUploadsOfMachine.run(orgId, machineName);
          s.deleteMachine.run(orgId, machineName);
          return "deleted";
        })
        .immediate(),
    );
  }

  createMachineVersion(version: MachineVersionRecord, makeCurrent: MakeCurrent): Promise<void> {
    return this.#run(({ s }) => {
      const { orgId, machineName, id } = version;
      const insert = () =>
        s.insertVersion.run(
          orgId,
          machineName,
          id,
          version.code,
          version.hash,
          version.clientInfo ?? null,
          selectorsText(version),
          version.createdAt,
        );
      // One transaction: a version made current is never visible half-stored, or vice versa, and
      // the upload it came from is gone exactly when the version exists.
      this.#db
        .transaction(() => {
          insertUnique(insert, `version ${id}`, `machine ${machineName}`);
          if (makeCurrent === "if-none") s.setCurrentVersionIfNone.run(id, orgId, machineName);
          else if (makeCurrent) s.setCurrentVersion.run(id, orgId, machineName);
          // Its upload is finalized: the code now lives in the version.
          s.deleteUpload.run(orgId, machineName, id);
        })
        .immediate();
    });
  }

  getMachineVersion(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionRecord | undefined> {
    return this.#run(({ s }) => {
      const row = s.selectVersion.get(orgId, machineName, versionId);
      return row && toVersionRecord(row);
    });
  }

  getMachineVersionInfo(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionInfo | undefined> {
    return this.#run(({ s }) => {
      const row = s.selectVersionInfo.get(orgId, machineName, versionId);
      return row && toVersionInfo(row);
    });
  }

  listMachineVersions(
    orgId: string,
    machineName: string,
    page: Page<VersionPosition>,
  ): Promise<MachineVersionInfo[]> {
    return this.#run(({ s }) =>
      listPage(s.listVersions, [orgId, machineName], page, (after) => [
        after.createdAt,
        after.id,
      ]).map(toVersionInfo),
    );
  }

  putCodeUpload(upload: CodeUploadRecord): Promise<void> {
    return this.#run(({ s }) => {
      const { orgId, machineName, id, code, createdAt } = upload;
      // IMMEDIATE: a finalize cannot turn the id into a version between the check and the insert.
      this.#db
        .transaction(() => {
          // The upload of a finalized version is gone, but its id stays used.
          if (s.versionExists.get(orgId, machineName, id) !== undefined) {
            throw new AlreadyExistsError(`version ${id} already exists`);
          }
          const insert = () => s.insertUpload.run(orgId, machineName, id, code, createdAt);
          insertUnique(insert, `upload ${id}`, `machine ${machineName}`);
        })
        .immediate();
    });
  }

  getCodeUpload(
    orgId: string,
    machineName: string,
    id: string,
  ): Promise<CodeUploadRecord | undefined> {
    return this.#run(({ s }) => s.selectUpload.get(orgId, machineName, id));
  }

  purgeCodeUploads(before: EpochMs): Promise<number> {
    return this.#run(({ s }) => s.purgeUploads.run(before).changes);
  }

  loadInstance(key: InstanceKey): Promise<InstanceRecord | undefined> {
    return this.#run(({ s }) => {
      const row = s.selectInstance.get(key.orgId, key.machineName, key.instanceName);
      return row && toInstanceRecord(row);
    });
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
    return this.#run(({ s }) => {
      const { orgId, machineName, instanceName } = key;
      return s.setStatus.run(status, orgId, machineName, instanceName).changes > 0;
    });
  }

  listInstances(orgId: string, machineName: string, page: Page): Promise<InstanceSummary[]> {
    return this.#run(({ s }) =>
      listPage(s.listInstances, [orgId, machineName], page, (after) => [after]).map(
        toInstanceSummary,
      ),
    );
  }

  deleteInstance(key: InstanceKey): Promise<boolean> {
    return this.#run(({ s }) =>
      this.#db
        .transaction(() => {
          const id = s.selectInstanceId.get(key.orgId, key.machineName, key.instanceName);
          if (id === undefined) return false;
          // Timers first: they refer to the instance row. The history is left to the purge.
          s.deleteTimersOfInstance.run(id);
          s.deleteInstance.run(id);
          s.queueHistoryPurge.run(id);
          return true;
        })
        .immediate(),
    );
  }

  purgeDeletedHistory(maxRows: number): Promise<number> {
    return this.#run(({ s }) => {
      checkPurgeChunk(maxRows);
      return this.#db.transaction(() => purgeHistoryChunk(s, maxRows)).immediate();
    });
  }

  setPendingServices(
    instanceId: number,
    pendingServices: string[],
    expected: { sequence: number; pendingServices: string[]; status: InstanceStatus },
  ): Promise<void> {
    return this.#run(({ s }) => {
      const { changes } = s.setPendingServices.run(
        JSON.stringify(pendingServices),
        instanceId,
        expected.sequence,
        JSON.stringify(expected.pendingServices),
        expected.status,
      );
      if (changes > 0) return;
      if (s.instanceExists.get(instanceId) === undefined) {
        throw new NotFoundError(`no instance with id ${instanceId}`);
      }
      throw new ConflictError(
        `instance ${instanceId} changed since its pending services were read`,
      );
    });
  }

  listTransitions(key: InstanceKey, page: TransitionPage): Promise<TransitionRecord[]> {
    return this.#run(({ s }) => {
      checkLimit(page.limit);
      const { orgId, machineName, instanceName } = key;
      const maxBytes = maxBytesOf(page);
      if (page.newestFirst === true) {
        // Counting down: "after" is below the given sequence; no position starts at the latest.
        const before = page.afterSequence ?? Number.MAX_SAFE_INTEGER;
        return s.selectTransitionsNewestFirst.all(
          orgId,
          machineName,
          instanceName,
          before,
          page.limit,
          maxBytes,
        );
      }
      const after = page.afterSequence ?? 0;
      return s.selectTransitions.all(orgId, machineName, instanceName, after, page.limit, maxBytes);
    });
  }

  nextTimerDue(): Promise<EpochMs | undefined> {
    return this.#run(({ s }) => nextTimerDue(s));
  }

  claimDueTimers(now: EpochMs, limit: number, leaseMs: number): Promise<TimerRecord[]> {
    return this.#run(({ claim }) => claim(now, limit, leaseMs));
  }

  releaseTimerClaims(): Promise<void> {
    return this.#run(({ s }) => {
      s.releaseTimerClaims.run();
    });
  }

  recordTimerFailure(
    timer: Pick<TimerRecord, "id" | "claimedUntil">,
    retryAt: EpochMs,
    drop: boolean,
  ): Promise<void> {
    return this.#run(({ s }) => {
      if (drop) s.dropClaimedTimer.run(timer.id, timer.claimedUntil);
      else s.retryClaimedTimer.run(retryAt, timer.id, timer.claimedUntil);
    });
  }

  listInstancesWithPendingServices(
    afterId: number,
    limit: number,
  ): Promise<Array<InstanceKey & { id: number }>> {
    checkLimit(limit);
    return this.#run(({ s }) => s.instancesWithPendingServices.all(afterId, limit));
  }

  cancelTimers(instanceId: number, timerKeys: readonly string[]): Promise<void> {
    return this.#run(({ s }) =>
      this.#db.transaction(() => {
        for (const key of timerKeys) s.deleteTimersByKey.run(instanceId, key);
      })(),
    );
  }

  leaseServices(nodeId: string, instances: readonly InstanceKey[], until: EpochMs): Promise<void> {
    return this.#run(({ s }) =>
      this.#db.transaction(() => {
        for (const { orgId, machineName, instanceName } of instances) {
          s.leaseServices.run(orgId, machineName, instanceName, nodeId, until);
        }
      })(),
    );
  }

  endServiceLeases(
    nodeId: string,
    instances: readonly InstanceKey[],
    expiredBefore: EpochMs,
  ): Promise<void> {
    return this.#run(({ s }) =>
      this.#db.transaction(() => {
        for (const { orgId, machineName, instanceName } of instances) {
          s.endServiceLease.run(orgId, machineName, instanceName, nodeId);
        }
        s.purgeServiceLeases.run(expiredBefore);
      })(),
    );
  }

  servicesLeasedElsewhere(key: InstanceKey, nodeId: string, now: EpochMs): Promise<boolean> {
    return this.#run(({ s }) => {
      const { orgId, machineName, instanceName } = key;
      return (
        s.serviceLeasedElsewhere.get(orgId, machineName, instanceName, nodeId, now) !== undefined
      );
    });
  }

  // ---- token exchange: identity and token providers (providers.ts does the work) ----

  upsertIdentityProvider(idp: IdentityProviderRecord): Promise<void> {
    return this.#run(({ providers }) => providers.upsertIdentityProvider(idp));
  }

  listIdentityProviders(
    orgId: string,
    page: Page<IdentityProviderPosition>,
  ): Promise<IdentityProviderRecord[]> {
    return this.#run(({ providers }) => providers.listIdentityProviders(orgId, page));
  }

  findIdentityProviders(
    orgId: string,
    token: { audiences: readonly string[]; issuer: string | undefined },
  ): Promise<IdentityProviderRecord[]> {
    return this.#run(({ providers }) => providers.findIdentityProviders(orgId, token));
  }

  deleteIdentityProvider(orgId: string, id: IdentityProviderId): Promise<boolean> {
    return this.#run(({ providers }) => providers.deleteIdentityProvider(orgId, id));
  }

  upsertTokenProvider(provider: TokenProviderRecord): Promise<void> {
    return this.#run(({ providers }) => providers.upsertTokenProvider(provider));
  }

  getTokenProvider(orgId: string, service: string): Promise<TokenProviderRecord | undefined> {
    return this.#run(({ providers }) => providers.getTokenProvider(orgId, service));
  }

  listTokenProviders(orgId: string, page: Page): Promise<TokenProviderRecord[]> {
    return this.#run(({ providers }) => providers.listTokenProviders(orgId, page));
  }

  deleteTokenProvider(orgId: string, service: string): Promise<boolean> {
    return this.#run(({ providers }) => providers.deleteTokenProvider(orgId, service));
  }

  // better-sqlite3 is synchronous; the port is asynchronous so that other adapters can be. A
  // synchronous throw becomes a rejection, with driver errors turned into coded ones.
  #attempt<T>(work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(toStoreError(error));
    }
  }

  #run<T>(work: (ready: Ready) => T): Promise<T> {
    return this.#attempt(() => work(this.#readyOrThrow()));
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

/** One page of a keyset-paged listing: `position` turns `page.after` into its parameters. */
function listPage<P extends unknown[], A extends unknown[], R, After>(
  paged: Paged<P, A, R>,
  scope: P,
  page: Page<After>,
  position: (after: After) => A,
): R[] {
  checkLimit(page.limit);
  if (page.limit === 0) return [];
  if (page.after === undefined) return paged.first.all(...scope, page.limit);
  return paged.after.all(...scope, ...position(page.after), page.limit);
}
