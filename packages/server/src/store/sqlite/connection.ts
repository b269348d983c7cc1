// Opens the SQLite database file with the settings every Backstate connection relies on.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

export type ConnectionOptions = { path: string; busyTimeoutMs: number };

export function openConnection({ path, busyTimeoutMs }: ConnectionOptions): Database.Database {
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TypeError("busyTimeoutMs must be a non-negative integer");
  }
  const inMemory = path === ":memory:";
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    // WAL: readers never block the writer (and vice versa); in memory it stays "memory".
    db.pragma("journal_mode = WAL");
    // FULL syncs the WAL on every commit, so a resolved commit survives power loss; group
    // commit is what keeps this from capping throughput at one sync per event.
    db.pragma("synchronous = FULL");
    // Off by default in SQLite, per connection; the schema's org scoping leans on it.
    db.pragma("foreign_keys = ON");
    // Another process holding the write lock makes us wait this long before SQLITE_BUSY.
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
