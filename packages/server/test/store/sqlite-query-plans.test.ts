// SQLite statements whose cost must follow the rows they answer or change, not the size of their
// tables: their plans (EXPLAIN QUERY PLAN) must find those rows by an index, never read a whole
// table. SQLite runs on the server's main thread, where a statement that reads every row of a
// big table holds up every request.
import assert from "node:assert/strict";
import { test } from "node:test";
import Database from "better-sqlite3";
import { applyMigrations, readMigrations } from "../../src/store/sqlite/migrate.js";
import { findMigrationsDir } from "../../src/store/sqlite/migrations-dir.js";
import { prepareStatements } from "../../src/store/sqlite/statements.js";
import { T0 } from "./fixtures.js";

/** The plan's steps, one line each ("SEARCH t USING INDEX …", "SCAN service_leases", …). */
function planOf(db: Database.Database, statement: object, ...params: unknown[]): string[] {
  const { source } = statement as { source: string };
  const steps = db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...params) as { detail: string }[];
  return steps.map((step) => step.detail);
}

function migratedDatabase(): Database.Database {
  const db = new Database(":memory:");
  applyMigrations(db, readMigrations(findMigrationsDir()));
  return db;
}

test("removing run-out service leases finds them by their end, not by reading every lease", () => {
  const db = migratedDatabase();
  try {
    // Many leases that hold, and the statistics a long-running database has of them.
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
       INSERT INTO service_leases (org_id, machine_name, instance_name, node_id, until)
       SELECT 'org_' || (i % 100), 'counter', 'i' || i, 'node-b', ? FROM n`,
    ).run(T0 + 60_000);
    db.prepare("INSERT INTO service_leases VALUES ('org_a', 'counter', 'i1', 'node-a', ?)").run(T0);
    db.exec("ANALYZE");
    const s = prepareStatements(db);

    const plan = planOf(db, s.purgeServiceLeases, T0 + 1);
    assert.ok(
      plan.some((step) =>
        /^SEARCH service_leases USING .*INDEX service_leases_by_until/.test(step),
      ),
      plan.join("\n"),
    );
    assert.equal(s.purgeServiceLeases.run(T0 + 1).changes, 1);
    assert.deepEqual(db.prepare("SELECT count(*) AS n FROM service_leases").get(), { n: 5000 });
  } finally {
    db.close();
  }
});
