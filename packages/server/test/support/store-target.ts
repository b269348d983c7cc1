// Which store the black-box server tests run on: SQLite in a fresh data dir (the default), or
// PostgreSQL on a fresh schema of the database BACKSTATE_TEST_PG_URL names. A test file runs on
// PostgreSQL by being imported through runOnPostgres from a second test file, so one set of test
// bodies runs against both stores.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { ServerOptions } from "../../src/http/server.js";
import { testDatabaseUrl } from "../store/postgres-support.js";

type Target = { kind: "sqlite" } | { kind: "postgres"; url: string };

let target: Target = { kind: "sqlite" };

/** The store this process's servers run on. */
export function storeTarget(): Target {
  return target;
}

/**
 * Runs a test module's tests on PostgreSQL: switches this process's target, then imports the
 * module, whose tests register as it loads. Without BACKSTATE_TEST_PG_URL the suite is reported
 * skipped, or failed in CI (see testDatabaseUrl).
 */
export async function runOnPostgres(suite: string, load: () => Promise<unknown>): Promise<void> {
  const url = testDatabaseUrl(suite);
  if (url === undefined) return;
  target = { kind: "postgres", url };
  await load();
}

export type FreshStore = {
  /** What startServer needs to open it: a data dir, or a database URL and schema. */
  options: Partial<ServerOptions>;
  /** Removes it, once the server on it has closed. */
  dispose(): Promise<void>;
};

/** A new, empty store on the target: its own data dir or its own schema. */
export function freshStore(name: string): FreshStore {
  if (target.kind === "sqlite") {
    const dataDir = mkdtempSync(join(tmpdir(), `backstate-${name}-`));
    return {
      options: { dataDir },
      dispose: () => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })),
    };
  }
  const { url } = target;
  const schema = freshSchemaName();
  return {
    // 6: the smallest pool that runs two commit batches at once, as a node does by default.
    options: { databaseUrl: url, postgres: { schema, poolSize: 6 } },
    dispose: () => dropSchema(url, schema),
  };
}

/** A schema name no test has used: the server creates the schema on its first start. */
export function freshSchemaName(): string {
  return `bs_test_${randomBytes(6).toString("hex")}`;
}

/** Drops a schema made by a test, with everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The name was made by freshSchemaName from hex digits: nothing to quote.
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
