// Settings every connection of a node sets on its PostgreSQL session as it opens, so that the
// server ends a session whose node is gone instead of keeping it (and what it holds) for hours:
// - TCP keepalives from the server's side: on a network cut without a word (a node's machine lost,
//   a half-open connection), the server probes after 30 s idle and drops the session after three
//   unanswered probes 10 s apart, about a minute in all, rather than after the operating system's
//   default of two hours and more. (Ignored on a Unix socket, which cannot be cut that way.)
// - client_connection_check_interval (PostgreSQL 14 and later): while a statement runs, the server
//   looks every 2 s whether its client is still there. A commit batch given up at its time limit
//   (commit.ts) is then cancelled, its locks let go, instead of running on to its end.
// Set by a statement rather than in the connection's startup options: a URL with its own
// `options` parameter replaces those, and an older server refuses an option it does not know.
import type { ClientBase } from "pg";

export const SESSION_SETTINGS = `SELECT
  set_config('tcp_keepalives_idle', '30', false),
  set_config('tcp_keepalives_interval', '10', false),
  set_config('tcp_keepalives_count', '3', false),
  CASE WHEN current_setting('server_version_num')::int >= 140000
    THEN set_config('client_connection_check_interval', '2000', false) END`;

/** Sets them on a connection just opened, before it runs anything else. */
export function applySessionSettings(client: Pick<ClientBase, "query">): Promise<unknown> {
  return client.query(SESSION_SETTINGS);
}
