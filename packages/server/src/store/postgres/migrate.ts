// Forward-only schema migrations on PostgreSQL: the numbered .sql files of postgres/migrations
// (the same numbers, and revisions, as SQLite's), each applied in its own transaction and
// recorded in schema_migrations. Several nodes starting at once take turns through an advisory
// lock, so each migration is applied exactly once; a database from a newer server is refused.
import { createHash } from "node:crypto";
import type { Pool, PoolClient } from "pg";
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
};

/**
 * Applies the migrations the database has not recorded yet and returns their versions. Throws
 * `store-newer-than-server` before changing anything when it has one this server does not know.
 * Migration files must not contain BEGIN/COMMIT: the transaction is opened here.
 */
export async function applyMigrations(
  pool: Pool,
  migrations: readonly Migration[],
  { schema, now = Date.now }: MigrateOptions = {},
): Promise<number[]> {
  if (schema !== undefined) checkSchemaName(schema);
  const key = lockKey(schema ?? "");

  // Every step holds the lock until its transaction ends, and reads what is applied inside it:
  // a node that waited sees what the node before it did.
  const lock = (client: PoolClient) =>
    client.query("SELECT pg_advisory_xact_lock($1::integer, $2::integer)", [LOCK_CLASS, key]);
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

async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof BackstateError || error instanceof TypeError) throw error;
    const what = name === "setup" ? "preparing the migrations" : `migration ${name}`;
    const reason = error instanceof Error ? `: ${error.message}` : "";
    throw new BackstateError("store-error", `${what} failed${reason}`, { cause: error });
  }
}
