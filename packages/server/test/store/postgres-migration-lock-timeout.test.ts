// A migration's ALTER queued behind a long transaction (a report, a forgotten session) would queue
// every later query on that table behind itself, stalling every node, for as long as that
// transaction lasts. A migration waits a few seconds at most for its locks, gives way, tries again
// a few times, and then fails the start with `migration-blocked`, naming what to look for.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { BackstateError } from "../../src/errors.js";
import { openPool } from "../../src/store/postgres/connection.js";
import { applyMigrations, type MigrateOptions } from "../../src/store/postgres/migrate.js";
import type { Migration } from "../../src/store/migrations.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: migrations behind a long transaction");
if (url !== undefined) {
  const schemas = new TestSchemas(url);
  const migrations: Migration[] = [
    { version: 1, name: "0001-things.sql", sql: "CREATE TABLE things (id INTEGER PRIMARY KEY)" },
    { version: 2, name: "0002-things-label.sql", sql: "ALTER TABLE things ADD COLUMN label TEXT" },
  ];

  /** A schema migrated to 1, and a session holding `things` in an open transaction. */
  async function heldTable(t: test.TestContext) {
    const schema = schemas.fresh();
    const pool = openPool({
      connectionString: url!,
      poolSize: 2,
      connectionTimeoutMs: 5_000,
      schema,
    });
    t.after(() => pool.end());
    await applyMigrations(pool, migrations.slice(0, 1), { schema });
    const session = (timeoutMs?: number) =>
      new pg.Client({
        connectionString: url,
        options: `-c search_path=${schema}`,
        ...(timeoutMs === undefined ? {} : { query_timeout: timeoutMs }),
      });
    const holder = session();
    await holder.connect();
    t.after(() => holder.end());
    await holder.query("BEGIN");
    await holder.query("SELECT count(*) FROM things");
    const migrate = (options: MigrateOptions) =>
      applyMigrations(pool, migrations, { schema, ...options });
    return { pool, holder, session, migrate };
  }

  test("a migration behind a long transaction gives way, lets other queries through, and fails clearly", async (t) => {
    const { holder, session, migrate } = await heldTable(t);
    const started = migrate({ lockTimeoutMs: 300, attempts: 3, retryDelayMs: 300 });
    const outcome = started.then(
      () => "applied",
      (error: unknown) => error,
    );

    // Another node's reads of the table, while the migration tries: none waits long.
    const reader = session(5_000);
    await reader.connect();
    t.after(() => reader.end());
    const slowest = { ms: 0 };
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      const before = performance.now();
      await reader.query("SELECT count(*) FROM things").catch(() => {});
      slowest.ms = Math.max(slowest.ms, performance.now() - before);
    }

    const result = await Promise.race([outcome, sleep(10_000).then(() => "stalled")]);
    // Let go in any case: a migration still waiting (without the timeout) then finishes.
    await holder.query("ROLLBACK");
    await outcome;
    assert.ok(
      slowest.ms < 1_000,
      `a read waited ${Math.round(slowest.ms)} ms behind the migration`,
    );
    assert.ok(result instanceof BackstateError, `the migration ended: ${String(result)}`);
    assert.equal(result.code, "migration-blocked");
    assert.match(result.message, /0002-things-label\.sql/);
    assert.match(result.message, /pg_stat_activity/);
  });

  test("a migration that gave way goes through once the long transaction ends", async (t) => {
    const { pool, holder, migrate } = await heldTable(t);
    const started = migrate({ lockTimeoutMs: 200, attempts: 20, retryDelayMs: 100 });
    await sleep(700);
    await holder.query("COMMIT");
    assert.deepEqual(await started, [2]);
    const columns = await pool.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'things' AND table_schema = current_schema() ORDER BY ordinal_position",
    );
    assert.deepEqual(
      columns.rows.map((column: { column_name: string }) => column.column_name),
      ["id", "label"],
    );
  });
}
