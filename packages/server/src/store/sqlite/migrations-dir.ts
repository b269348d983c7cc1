// Locates the SQLite adapter's .sql migrations at run time (see findAdapterMigrationsDir).
import { findAdapterMigrationsDir } from "../migrations.js";

/** The SQLite migrations folder of the package that contains `moduleUrl` (this one by default). */
export function findMigrationsDir(moduleUrl: string = import.meta.url): string {
  return findAdapterMigrationsDir("sqlite", moduleUrl);
}
