// Settings every connection of a node sets on its PostgreSQL session as it opens, so that the
// server ends a session whose node is gone instead of keeping it (and what it holds) for hours:
// - TCP keepalives from the server's side: on a network cut without a word (a node's machine lost,
//   a half-open connection), the server probes a silent connection after 30 s and drops it after
//   three unanswered probes 10 s apart, about a minute in all, rather than after the operating
//   system's default of two hours and more;
// - tcp_user_timeout (PostgreSQL 12 and later): a connection the server is sending to (change
//   notices to a listener, say), which keepalives never probe, is dropped once what it sent has
//   gone unacknowledged for 60 s, rather than after some 15 minutes of retransmissions;
// - client_connection_check_interval (PostgreSQL 14 and later, where the platform allows it):
//   while a statement runs, the server looks every 2 s whether its client is still there. A
//   commit batch given up at its time limit (commit.ts) is then cancelled, its locks let go,
//   instead of running on to its end.
// All are ignored on a Unix socket, which cannot be cut that way. Each is set if the server takes
// it: one it refuses (too old a version, a platform without the check) leaves the server's
// default, and never keeps a connection from being used. Set by a statement rather than in the
// connection's startup options: a URL with its own `options` parameter replaces those, and a
// server refuses a startup option it does not know.
// Behind a pooler (PgBouncer), they govern the pooler's connections to PostgreSQL instead.
import { DatabaseError, type ClientBase } from "pg";

export const SESSION_SETTINGS = `DO $settings$
BEGIN
  PERFORM set_config('tcp_keepalives_idle', '30', false),
    set_config('tcp_keepalives_interval', '10', false),
    set_config('tcp_keepalives_count', '3', false);
  BEGIN
    PERFORM set_config('tcp_user_timeout', '60000', false);
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  BEGIN
    PERFORM set_config('client_connection_check_interval', '2000', false);
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
END
$settings$`;

/**
 * Sets them on a connection just opened, before it runs anything else, within `timeoutMs`. A
 * refusal from the server is let go (the session keeps the defaults); a connection that breaks
 * or stalls fails, as its first statement would have.
 */
export async function applySessionSettings(
  client: Pick<ClientBase, "query">,
  timeoutMs: number,
): Promise<void> {
  try {
    // pg honours query_timeout per statement, though its types lack it.
    const statement = { text: SESSION_SETTINGS, query_timeout: timeoutMs };
    await client.query(statement);
  } catch (error) {
    // A FATAL one (the session terminated) leaves the connection dead: that is no refusal.
    if (!(error instanceof DatabaseError) || error.severity !== "ERROR") throw error;
  }
}
