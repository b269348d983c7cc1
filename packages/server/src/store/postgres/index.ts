// The PostgreSQL adapter's public surface.
export {
  openPostgresStore,
  type PostgresStore,
  type PostgresStoreOptions,
} from "./postgres-store.js";
export { NoticeListener, channelOf, type Notice, type NoticeListenerOptions } from "./notices.js";
export { warnIfCommitsNotDurable } from "./synchronous-commit.js";
