// What the PostgreSQL tests share: the database they run against (BACKSTATE_TEST_PG_URL), and a
// fresh schema per store, dropped when the test file is done.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import pg from "pg";
import {
  openPostgresStore,
  type PostgresStore,
  type PostgresStoreOptions,
} from "../../src/store/postgres/index.js";

const URL_VARIABLE = "BACKSTATE_TEST_PG_URL";

/** Test schemas dropped per statement (see dropAll). */
const DROP_BATCH = 8;

function inCi(): boolean {
  const ci = process.env["CI"];
  return ci !== undefined && ci !== "" && ci !== "0" && ci !== "false";
}

/**
 * The database URL, or undefined when there is none. Without one, `suite` is reported as skipped
 * (with how to run it); in CI it fails instead, since CI must never skip these tests silently.
 */
export function testDatabaseUrl(suite: string): string | undefined {
  const url = process.env[URL_VARIABLE];
  if (url !== undefined && url !== "") return url;
  if (inCi()) {
    test(`${suite}: needs PostgreSQL`, () => {
      assert.fail(`${URL_VARIABLE} is not set; CI must run the PostgreSQL tests, not skip them`);
    });
  } else {
    const example = "postgres://postgres@127.0.0.1:5432/test";
    test(suite, { skip: `${URL_VARIABLE} is not set (e.g. ${example})` }, () => {});
  }
  return undefined;
}

/** Fresh schemas on one database, all dropped (with everything in them) after the test file. */
export class TestSchemas {
  readonly url: string;
  readonly #created: string[] = [];

  constructor(url: string) {
    this.url = url;
    after(() => this.dropAll());
  }

  /** A new schema name; `migrate()` creates the schema. */
  fresh(): string {
    const name = `bs_test_${randomBytes(6).toString("hex")}`;
    this.#created.push(name);
    return name;
  }

  /**
   * Opens a store on `schema`, not yet migrated. Its pool of 6 is the smallest that runs two
   * commit batches at once, as a node does by default.
   */
  open(schema: string, options: Partial<PostgresStoreOptions> = {}): PostgresStore {
    return openPostgresStore({ connectionString: this.url, schema, poolSize: 6, ...options });
  }

  /** Opens and migrates a store on `schema`; closes it again when migrating fails. */
  async migrated(
    schema: string,
    options: Partial<PostgresStoreOptions> = {},
  ): Promise<PostgresStore> {
    const store = this.open(schema, options);
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** Runs `body` with a plain client on the database, its search_path set to `schema`. */
  async sql<T>(schema: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      connectionString: this.url,
      options: `-c search_path=${schema}`,
    });
    await client.connect();
    try {
      return await body(client);
    } finally {
      await client.end();
    }
  }

  async dropAll(): Promise<void> {
    const names = this.#created.splice(0);
    if (names.length === 0) return;
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      // A few per statement: dropping every schema of a file in one statement locks every table
      // of them at once, which ran out of PostgreSQL's shared lock table ("out of shared memory")
      // once the contract suite made some 60 schemas. The names were made here from hex digits:
      // nothing to quote.
      for (let start = 0; start < names.length; start += DROP_BATCH) {
        const batch = names.slice(start, start + DROP_BATCH);
        await client.query(`DROP SCHEMA IF EXISTS ${batch.join(", ")} CASCADE`);
      }
    } finally {
      await client.end();
    }
  }
}
