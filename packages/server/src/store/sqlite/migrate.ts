// Forward-only schema migrations: numbered .sql files, each applied in its own transaction and
// recorded in schema_migrations. A database holding a migration this code does not know was
// written by a newer server, and is refused rather than misread.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { BackstateError } from "../../errors.js";

export type Migration = { version: number; name: string; sql: string };

// 0001-init.sql: the number is the revision (the same number means the same revision in every
// dialect); the rest of the name is for people.
const FILE_NAME = /^(\d{4})-[a-z0-9-]+\.sql$/;

/** Reads every migration of `dir`, in order; they must be numbered 1, 2, 3, … without gaps. */
export function readMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (match === null) throw new Error(`migration file name not like 0001-name.sql: ${file}`);
      return { version: Number(match[1]), name: file, sql: readFileSync(join(dir, file), "utf8") };
    })
    .sort((a, b) => a.version - b.version);
  if (migrations.length === 0) throw new Error(`no migrations in ${dir}`);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`migrations must be numbered from 0001 without gaps: ${migration.name}`);
    }
  });
  return migrations;
}

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
  const known = new Set(migrations.map((migration) => migration.version));

  const appliedVersions = (): Set<number> => {
    const applied = selectApplied.all();
    const unknown = applied.filter((version) => !known.has(version));
    if (unknown.length > 0) {
      const list = unknown.map((version) => String(version).padStart(4, "0")).join(", ");
      throw new BackstateError(
        "store-newer-than-server",
        `the database has migration ${list}, unknown to this server: it was last used by a newer ` +
          `Backstate; upgrade Backstate to open it`,
      );
    }
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
