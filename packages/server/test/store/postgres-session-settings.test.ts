// A node's PostgreSQL sessions end on the server soon after the node lets go of them: a statement
// whose client gave up (a commit batch past its time limit) is cancelled within seconds instead of
// running on with its locks, and a session cut off by the network is probed after 30 s of silence.
// Regression: a given-up batch ran on to its end, and a cut session lingered for the operating
// system's two hours of TCP keepalive.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { checkOut, openPool } from "../../src/store/postgres/connection.js";
import {
  applySessionSettings,
  SESSION_SETTINGS,
} from "../../src/store/postgres/session-settings.js";
import { testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("PostgreSQL session settings");

if (url !== undefined) {
  const pool = openPool({
    connectionString: url,
    poolSize: 2,
    connectionTimeoutMs: 5_000,
    schema: undefined,
  });
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  after(async () => {
    await pool.end();
    await observer.end();
  });

  const settingOf = async (client: pg.ClientBase, name: string) =>
    (await client.query<{ value: string }>(`SELECT current_setting($1) AS value`, [name])).rows[0]!
      .value;

  test("every pooled session probes its client from the server's side", async () => {
    const client = await checkOut(pool);
    try {
      const version = Number(await settingOf(client, "server_version_num"));
      assert.equal(await settingOf(client, "tcp_keepalives_count"), "3");
      // On a Unix socket the server reports 0 for these whatever is set: the URL here is TCP.
      assert.equal(await settingOf(client, "tcp_keepalives_idle"), "30");
      assert.equal(await settingOf(client, "tcp_keepalives_interval"), "10");
      if (version >= 120000) assert.equal(await settingOf(client, "tcp_user_timeout"), "60000");
      if (version >= 140000) {
        assert.equal(await settingOf(client, "client_connection_check_interval"), "2s");
      }
    } finally {
      client.release();
    }
  });

  test("a setting the server refuses leaves its default, and the rest are set", async () => {
    // As on a server too old for a setting, or a platform without the connection check.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // PostgreSQL before 14 knows no such setting, and says so as it does for this one.
      const refused = SESSION_SETTINGS.replace(
        "client_connection_check_interval",
        "no_such_setting",
      );
      assert.notEqual(refused, SESSION_SETTINGS);
      await client.query(refused);
      assert.equal(await settingOf(client, "tcp_keepalives_count"), "3");
      assert.equal(await settingOf(client, "client_connection_check_interval"), "0");
    } finally {
      await client.end();
    }
  });

  test("a refusal of the whole statement is let go; a broken or terminated connection is not", async () => {
    const refusal = new pg.DatabaseError("permission denied", 0, "error");
    refusal.severity = "ERROR";
    await applySessionSettings({ query: () => Promise.reject(refusal) } as never, 1_000);
    const terminated = new pg.DatabaseError("terminating connection", 0, "error");
    terminated.severity = "FATAL";
    await assert.rejects(
      applySessionSettings({ query: () => Promise.reject(terminated) } as never, 1_000),
      /terminating connection/,
    );
    const broken = { query: () => Promise.reject(new Error("Connection terminated")) };
    await assert.rejects(applySessionSettings(broken as never, 1_000), /Connection terminated/);
  });

  test("a statement whose client gave up is cancelled on the server within seconds", async (t) => {
    const version = Number(await settingOf(observer, "server_version_num"));
    if (version < 140000) {
      t.skip("PostgreSQL before 14 has no client_connection_check_interval");
      return;
    }
    const client = await checkOut(pool);
    const pid = (client as unknown as { processID: number }).processID;
    let broken: Error | undefined;
    try {
      // pg's types lack query_timeout, which it honours per statement (as commit.ts uses it).
      const statement = { text: "SELECT pg_sleep(30)", query_timeout: 300 };
      await client.query(statement);
      assert.fail("the statement should have been given up");
    } catch (error) {
      broken = error as Error;
      assert.match(broken.message, /timeout/i);
    } finally {
      // Released broken, as the commit path does: pg closes the connection.
      client.release(broken ?? true);
    }
    const running = async () =>
      Number(
        (
          await observer.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity
              WHERE pid = $1 AND query = 'SELECT pg_sleep(30)' AND state = 'active'`,
            [pid],
          )
        ).rows[0]!.n,
      );
    // Just given up, it still runs: this is the statement watched below.
    assert.equal(await running(), 1, "the statement is seen running on the server");
    // It ends once the server has seen its client go (the check comes every 2 s); without the
    // setting it would run its full 30 s.
    const deadline = Date.now() + 10_000;
    let still = await running();
    while (still > 0 && Date.now() < deadline) {
      await sleep(200);
      still = await running();
    }
    assert.equal(still, 0, "the given-up statement still runs on the server");
  });
}
