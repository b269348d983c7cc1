// Forward-only schema migrations on PostgreSQL: the numbered .sql files of postgres/migrations
// (the same numbers, and revisions, as SQLite's), each applied in its own transaction and
// recorded in schema_migrations. Several nodes starting at once take turns through an advisory
// lock, so each migration is applied exactly once; a database from a newer server is refused.
// A step waits for the tables it changes for a few seconds at most (lock_timeout): a statement
// waiting for a lock queues every later one on that table behind it, so a migration stuck behind
// a long transaction would stall every node's queries there. It gives way, tries again a few
// times, and then fails the start with `migration-blocked`.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { DatabaseError, type Pool, type PoolClient } from "pg";
import { BackstateError } from "../../errors.js";
import { checkNotNewer, type Migration } from "../migrations.js";
import { checkSchemaName, inTransaction, row, rows } from "./connection.js";

// The advisory lock's first key: Backstate's migrations ("BSMG"); the second is the schema's.
const LOCK_CLASS = 0x42_53_4d_47;

/** A 32-bit key for the schema: nodes migrating different schemas of a database do not wait. */
function lockKey(schema: string): number {
  return createHash("sha256").update(schema).digest().readInt32BE(0);
}

export type MigrateOptions = {
  /** The schema the connections' search_path names, created when missing; else the default one. */
  schema?: string | undefined;
  now?: () => number;
  /** How long a step waits for a table lock before it gives way. Default 5000 ms. */
  lockTimeoutMs?: number;
  /** How many times a step is tried when it could not take its locks. Default 5. */
  attempts?: number;
  /** The pause between those tries, which lets the queries queued meanwhile through. Default 1 s. */
  retryDelayMs?: number;
};

const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
const DEFAULT_ATTEMPTS = 5;
const DEFAULT_RETRY_DELAY_MS = 1_000;

/**
 * Applies the migrations the database has not recorded yet and returns their versions. Throws
 * `store-newer-than-server` before changing anything when it has one this server does not know.
 * Migration files must not contain BEGIN/COMMIT: the transaction is opened here.
 */
export async function applyMigrations(
  pool: Pool,
  migrations: readonly Migration[],
  options: MigrateOptions = {},
): Promise<number[]> {
  const { schema, now = Date.now } = options;
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (schema !== undefined) checkSchemaName(schema);
  const key = lockKey(schema ?? "");
  const tries = {
    lockTimeoutMs,
    attempts: options.attempts ?? DEFAULT_ATTEMPTS,
    retryDelayMs: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
  };
  const step = <T>(name: string, work: () => Promise<T>) =>
    reportedAs(name, () => retried(name, work, tries));

  // Every step holds the lock until its transaction ends, and reads what is applied inside it:
  // a node that waited sees what the node before it did. The lock timeout is set only once it is
  // held: waiting for another node's migrations is no stall, and it must not give way.
  const lock = async (client: PoolClient) => {
    await client.query("SELECT pg_advisory_xact_lock($1::integer, $2::integer)", [LOCK_CLASS, key]);
    // A whole number of milliseconds: safe to put in the statement, which takes no parameters.
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
  };
  const readApplied = async (client: PoolClient): Promise<Set<number>> => {
    const applied = await rows<{ version: number }>(
      client,
      "SELECT version FROM schema_migrations ORDER BY version",
    );
    const versions = applied.map((record) => record.version);
    checkNotNewer(versions, migrations);
    return new Set(versions);
  };

  const applied = await step("setup", () =>
    inTransaction(pool, async (client) => {
      await lock(client);
      // Looked up first: CREATE SCHEMA IF NOT EXISTS needs the right to create schemas even when
      // there is nothing to create.
      if (schema !== undefined) {
        const exists = await row(client, "SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
        // The name was checked to be a plain identifier: it needs no quoting.
        if (exists === undefined) await client.query(`CREATE SCHEMA ${schema}`);
      }
      // Likewise: a node whose role may not create tables still starts on a migrated database.
      const table = await row<{ oid: string | null }>(
        client,
        "SELECT to_regclass('schema_migrations') AS oid",
      );
      if (table?.oid === null) {
        await client.query(`CREATE TABLE schema_migrations (
          version    INTEGER NOT NULL PRIMARY KEY,
          name       TEXT    NOT NULL,
          applied_at BIGINT  NOT NULL
        )`);
      }
      return readApplied(client);
    }),
  );

  const appliedNow: number[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    await step(migration.name, () =>
      inTransaction(pool, async (client) => {
        await lock(client);
        if ((await readApplied(client)).has(migration.version)) return;
        // No parameters: the simple protocol, which runs every statement of the file.
        await client.query(migration.sql);
        await client.query(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
          [migration.version, migration.name, now()],
        );
        appliedNow.push(migration.version);
      }),
    );
  }
  return appliedNow;
}

/** Runs a step's transaction, again while it could not take its locks, up to `attempts` times. */
async function retried<T>(
  name: string,
  work: () => Promise<T>,
  tries: { lockTimeoutMs: number; attempts: number; retryDelayMs: number },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isLockTimeout(error)) throw error;
      if (attempt >= tries.attempts) throw blocked(name, tries, error);
      await sleep(tries.retryDelayMs);
    }
  }
}

function isLockTimeout(error: unknown): boolean {
  return error instanceof DatabaseError && error.code === "55P03";
}

function blocked(
  name: string,
  tries: { lockTimeoutMs: number; attempts: number },
  error: unknown,
): BackstateError {
  return new BackstateError(
    "migration-blocked",
    `${describeStep(name)} could not lock the tables it changes (waited ${tries.lockTimeoutMs} ms, ` +
      `${tries.attempts} times): another session's transaction holds them; find it in ` +
      `pg_stat_activity (pg_blocking_pids), end it, and start the node again`,
    { cause: error },
  );
}

/** Runs a step, its driver errors turned into store-error naming the step. */
async function reportedAs<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof BackstateError || error instanceof TypeError) throw error;
    const reason = error instanceof Error ? `: ${error.message}` : "";
    throw new BackstateError("store-error", `${describeStep(name)} failed${reason}`, {
      cause: error,
    });
  }
}

function describeStep(name: string): string {
  return name === "setup" ? "preparing the migrations" : `migration ${name}`;
}
