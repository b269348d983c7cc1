// The SQLite adapter's public surface.
export {
  openSqliteStore,
  type OwnedSqliteStore,
  type SqliteStore,
  type SqliteStoreOptions,
} from "./sqlite-store.js";
