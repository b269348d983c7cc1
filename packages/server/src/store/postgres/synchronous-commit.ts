// A node answers a write once its commit returns, and tells its callers it is durable: that holds
// only while PostgreSQL waits for the commit's write-ahead log to reach disk before it returns,
// its default (synchronous_commit=on). With `off`, set for the server, the database, the role or in
// the URL's options, a crash of the database loses the writes of up to three times
// wal_writer_delay (600 ms by default) before it, all of them already acknowledged. Not refused
// (an operator may accept that for throughput), but said at start, where an operator looks.
import type { Logger } from "../../engine/logger.js";
import type { PostgresStore } from "./postgres-store.js";

/** Logs a warning when the store's sessions commit with synchronous_commit=off. */
export async function warnIfCommitsNotDurable(
  store: Pick<PostgresStore, "synchronousCommit">,
  logger: Logger,
): Promise<void> {
  const setting = await store.synchronousCommit();
  if (setting !== "off") return;
  logger.warn(
    "PostgreSQL's synchronous_commit is off for this node's sessions: a write acknowledged just " +
      "before a crash of the database may be lost; set it to on (the default) for the database " +
      "or role the node connects as",
    { synchronousCommit: setting },
  );
}
