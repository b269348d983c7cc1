// The embedded SQLite adapter of the storage port: better-sqlite3 on one file (or in memory).
import type Database from "better-sqlite3";
import { BackstateError, NotFoundError } from "../../errors.js";
import { GroupCommitter } from "../group-commit.js";
import type {
  CommitResult,
  EpochMs,
  InstanceKey,
  InstanceRecord,
  InstanceStatus,
  KeyRecord,
  MachineRecord,
  MachineVersionRecord,
  OrgRecord,
  Store,
  TimerRecord,
  TransitionCommit,
  TransitionRecord,
} from "../store.js";
import { commitBatchRunner } from "./commit.js";
import { openConnection } from "./connection.js";
import { applyMigrations, readMigrations } from "./migrate.js";
import { findMigrationsDir } from "./migrations-dir.js";
import { toInstanceRecord, toKeyRecord, toMachineRecord, toVersionRecord } from "./rows.js";
import { insertUnique, toStoreError } from "./sqlite-errors.js";
import { prepareStatements, type Statements } from "./statements.js";
import { nextTimerDue, timerClaimer } from "./timers.js";

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

/** Opens the database; call `migrate()` before anything else. */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStoreImpl(options);
}

// What exists only once migrations have run (preparing a statement checks its tables exist).
type Ready = {
  s: Statements;
  claim: ReturnType<typeof timerClaimer>;
  commits: GroupCommitter<TransitionCommit, CommitResult>;
};

class SqliteStoreImpl implements SqliteStore {
  readonly #db: Database.Database;
  readonly #migrationsDir: string;
  readonly #maxBatchSize: number;
  #ready: Ready | undefined;
  #closed = false;

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
      this.#ready = { s, claim: timerClaimer(this.#db, s), commits };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Commits already accepted are written, not dropped: their callers are still waiting.
    await this.#ready?.commits.drain();
    this.#db.close();
  }

  createOrg(org: OrgRecord): Promise<void> {
    return this.#run(({ s }) => {
      insertUnique(() => s.insertOrg.run(org.id, org.name, org.createdAt), `org ${org.id}`);
    });
  }

  getOrg(orgId: string): Promise<OrgRecord | undefined> {
    return this.#run(({ s }) => s.selectOrg.get(orgId));
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

  createMachine(machine: { orgId: string; name: string; createdAt: EpochMs }): Promise<void> {
    return this.#run(({ s }) => {
      const insert = () => s.insertMachine.run(machine.orgId, machine.name, machine.createdAt);
      insertUnique(insert, `machine ${machine.name}`, `org ${machine.orgId}`);
    });
  }

  getMachine(orgId: string, machineName: string): Promise<MachineRecord | undefined> {
    return this.#run(({ s }) => {
      const row = s.selectMachine.get(orgId, machineName);
      return row && toMachineRecord(row);
    });
  }

  createMachineVersion(version: MachineVersionRecord, makeCurrent: boolean): Promise<void> {
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
          version.createdAt,
        );
      // One transaction: a version made current is never visible half-stored, or vice versa.
      this.#db
        .transaction(() => {
          insertUnique(insert, `version ${id}`, `machine ${machineName}`);
          if (makeCurrent) s.setCurrentVersion.run(id, orgId, machineName);
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
    // Queued synchronously, so a close() that follows finds it in the queue and writes it.
    // The committer settles the promise after the batch's transaction has ended.
    return ready.commits.submit(commit);
  }

  setInstanceStatus(key: InstanceKey, status: InstanceStatus): Promise<boolean> {
    return this.#run(({ s }) => {
      const { orgId, machineName, instanceName } = key;
      return s.setStatus.run(status, orgId, machineName, instanceName).changes > 0;
    });
  }

  setPendingServices(instanceId: number, pendingServices: string[]): Promise<void> {
    return this.#run(({ s }) => {
      const { changes } = s.setPendingServices.run(JSON.stringify(pendingServices), instanceId);
      if (changes === 0) throw new NotFoundError(`no instance with id ${instanceId}`);
    });
  }

  listTransitions(
    key: InstanceKey,
    page: { afterSequence?: number; limit: number },
  ): Promise<TransitionRecord[]> {
    return this.#run(({ s }) => {
      if (!Number.isInteger(page.limit) || page.limit < 0) {
        throw new TypeError("limit must be an integer ≥ 0");
      }
      const { orgId, machineName, instanceName } = key;
      const after = page.afterSequence ?? 0;
      return s.selectTransitions.all(orgId, machineName, instanceName, after, page.limit);
    });
  }

  nextTimerDue(): Promise<EpochMs | undefined> {
    return this.#run(({ s }) => nextTimerDue(s));
  }

  claimDueTimers(now: EpochMs, limit: number, leaseMs: number): Promise<TimerRecord[]> {
    return this.#run(({ claim }) => claim(now, limit, leaseMs));
  }

  recordTimerFailure(timerId: number, retryAt: EpochMs, drop: boolean): Promise<void> {
    return this.#run(({ s }) => {
      if (drop) s.deleteTimer.run(timerId);
      else s.retryTimer.run(retryAt, timerId);
    });
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
