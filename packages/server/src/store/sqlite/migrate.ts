// Forward-only schema migrations: numbered .sql files, each applied in its own transaction and
// recorded in schema_migrations. A database holding a migration this code does not know was
// written by a newer server, and is refused rather than misread.
import type Database from "better-sqlite3";
import { BackstateError } from "../../errors.js";
import { checkNotNewer, type Migration } from "../migrations.js";

export { readMigrations, type Migration } from "../migrations.js";

/**
 * Applies the migrations `db` has not recorded yet and returns their versions. Throws
 * `store-newer-than-server` before changing anything when the database has one it does not know.
 * Migration files must not contain BEGIN/COMMIT: the transaction is opened here.
 */
export function applyMigrations(
  db: Database.Database,
  migrations: readonly Migration[],
  now: () => number = Date.now,
): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const selectApplied = db
    .prepare<[], number>("SELECT version FROM schema_migrations ORDER BY version")
    .pluck();
  const record = db.prepare<[number, string, number]>(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
  );
  const appliedVersions = (): Set<number> => {
    const applied = selectApplied.all();
    checkNotNewer(applied, migrations);
    return new Set(applied);
  };

  appliedVersions();
  const appliedNow: number[] = [];
  for (const migration of migrations) {
    // IMMEDIATE takes the write lock up front, and the check is repeated inside it, so two
    // processes migrating the same file at once apply each migration exactly once.
    const apply = db.transaction(() => {
      if (appliedVersions().has(migration.version)) return;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, now());
      appliedNow.push(migration.version);
    });
    try {
      apply.immediate();
    } catch (error) {
      if (error instanceof BackstateError) throw error;
      throw new BackstateError("store-error", `migration ${migration.name} failed`, {
        cause: error,
      });
    }
  }
  return appliedNow;
}
