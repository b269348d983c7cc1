// What every adapter's forward-only migrations share: numbered .sql files (the same number is the
// same revision in every dialect), read in order, found in the package at run time, and the error
// that refuses a database written by a newer server.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BackstateError } from "../errors.js";

export type Migration = { version: number; name: string; sql: string };

// 0001-init.sql: the number is the revision; the rest of the name is for people.
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
 * `store-newer-than-server` when `applied` holds a version none of `migrations` has: the
 * database was last used by a newer server, and is refused rather than misread.
 */
export function checkNotNewer(applied: readonly number[], migrations: readonly Migration[]): void {
  const known = new Set(migrations.map((migration) => migration.version));
  const unknown = applied.filter((version) => !known.has(version));
  if (unknown.length === 0) return;
  const list = unknown.map((version) => String(version).padStart(4, "0")).join(", ");
  throw new BackstateError(
    "store-newer-than-server",
    `the database has migration ${list}, unknown to this server: it was last used by a newer ` +
      `Backstate; upgrade Backstate to open it`,
  );
}

/**
 * The migrations folder of an adapter (`src/store/<adapter>/migrations`) in the package that
 * contains `moduleUrl` (this module by default). tsc does not copy .sql files to dist/, so they
 * are read from the package's src/ folder (published alongside dist/), found by walking up.
 */
export function findAdapterMigrationsDir(
  adapter: "sqlite" | "postgres",
  moduleUrl: string = import.meta.url,
): string {
  const relative = join("src", "store", adapter, "migrations");
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    // The package root is the nearest folder with a package.json; requiring the migrations
    // folder too skips any package.json a build might drop inside dist/.
    const candidate = join(dir, relative);
    if (existsSync(join(dir, "package.json")) && existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`cannot find ${relative} above ${fileURLToPath(moduleUrl)}`);
    }
    dir = parent;
  }
}
