// `backstate serve --database-pool-size`: the most connections a node's PostgreSQL pool opens.
// Seen from PostgreSQL: commits to instance rows another session holds each wait on a connection
// of their own, up to half the pool (the store's rule), so with 4 connections only 2 of 4 such
// commits can be waiting there at once, where the default pool of 10 lets all 4 wait.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { test, type TestContext } from "node:test";
import pg from "pg";
import { backstate, call, deploy, serve, stop, tempDir, type Reply } from "./support/cli.js";

const TIMEOUT = { timeout: 90_000 };
const PG_URL = process.env.BACKSTATE_TEST_PG_URL;

const TOGGLE = `
import { createMachine } from "xstate";
export default createMachine({
  initial: "off",
  states: { off: { on: { toggle: "on" } }, on: { on: { toggle: "off" } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

/**
 * A database URL on a schema of its own (dropped after the test) whose connections carry
 * `applicationName`, so the test can tell the node's connections from everyone else's.
 */
async function freshDatabase(t: TestContext, applicationName: string): Promise<string> {
  const schema = `bs_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  t.after(async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });
  const url = new URL(PG_URL!);
  url.searchParams.set("options", `-c search_path=${schema}`);
  url.searchParams.set("application_name", applicationName);
  return url.toString();
}

/** How many of the node's sessions wait for a lock `holder` has, and how many it has in all. */
async function nodeSessions(watcher: pg.Client, applicationName: string, holder: number) {
  const { rows } = await watcher.query<{ waiting: number; all: number }>(
    `SELECT count(*) FILTER (WHERE $2 = ANY (pg_blocking_pids(pid)))::int AS waiting,
            count(*)::int AS all
       FROM pg_stat_activity WHERE application_name = $1`,
    [applicationName, holder],
  );
  return rows[0]!;
}

/**
 * Waits until `limits.waiting` of the node's sessions wait for the holder's locks, then watches a
 * while longer (a window in which nothing more may happen: 25 looks over ~500 ms) that no more
 * join them; throughout, the node never has more than `limits.sessions` sessions.
 */
async function waitingCommitsStayWithin(
  watcher: pg.Client,
  applicationName: string,
  holder: number,
  limits: { waiting: number; sessions: number },
): Promise<void> {
  const look = async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const seen = await nodeSessions(watcher, applicationName, holder);
    assert.ok(seen.all <= limits.sessions, `${seen.all} sessions, ${limits.sessions} at most`);
    assert.ok(seen.waiting <= limits.waiting, `${seen.waiting} waited, ${limits.waiting} may`);
    return seen;
  };
  const deadline = Date.now() + 20_000;
  while ((await look()).waiting < limits.waiting) {
    assert.ok(Date.now() < deadline, `fewer than ${limits.waiting} commits ever waited`);
  }
  for (let i = 0; i < 25; i++) await look();
}

for (const poolSize of [4, undefined]) {
  const most = poolSize === undefined ? 10 : poolSize;
  test(
    `--database-pool-size ${poolSize ?? "(default 10)"}: commits waiting for held rows use at most half of ${most} connections`,
    {
      ...TIMEOUT,
      skip: !PG_URL && !process.env.CI ? "BACKSTATE_TEST_PG_URL is not set" : false,
    },
    async (t) => {
      assert.ok(PG_URL, "CI must run this on PostgreSQL: set BACKSTATE_TEST_PG_URL");
      const applicationName = `bs_pool_${randomBytes(4).toString("hex")}`;
      const databaseUrl = await freshDatabase(t, applicationName);
      const server = await serve(tempDir(t), [
        "--database-url",
        databaseUrl,
        ...(poolSize === undefined ? [] : ["--database-pool-size", String(poolSize)]),
      ]);
      t.after(() => server.child.kill("SIGKILL"));
      const { adminToken: token, orgId } = JSON.parse(
        readFileSync(server.credentialsPath, "utf8"),
      ) as { adminToken: string; orgId: string };
      await deploy(server.url, { token, orgId }, "toggle", TOGGLE);
      const names = ["a", "b", "c", "d"];
      for (const slug of names) {
        const created = await call(server.url, token, "POST", "/machines/toggle", {
          orgId,
          body: { slug },
        });
        assert.equal(created.status, 200, JSON.stringify(created));
      }

      // Another session holds every instance row, as an operator's SELECT … FOR UPDATE would.
      const holder = new pg.Client({
        connectionString: databaseUrl.replace(applicationName, "holder"),
      });
      await holder.connect();
      const watcher = new pg.Client({ connectionString: PG_URL });
      await watcher.connect();
      let sent: Array<Promise<Reply>> | undefined;
      try {
        await holder.query("BEGIN");
        await holder.query("SELECT 1 FROM instances WHERE name = ANY ($1) FOR UPDATE", [names]);
        const { pid } = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))
          .rows[0]!;
        sent = names.map((name) =>
          call(server.url, token, "POST", `/machines/toggle/i/${name}/events`, {
            orgId,
            body: { event: "toggle" },
          }),
        );
        await waitingCommitsStayWithin(watcher, applicationName, pid, {
          // Half the pool, at most the 4 sent.
          waiting: Math.min(names.length, Math.floor(most / 2)),
          // The pool, and the connection that listens for other nodes' changes.
          sessions: most + 1,
        });
        await holder.query("COMMIT");
      } finally {
        // Ending the holder's session lets the rows go, whatever happened (the schema's drop
        // after the test would wait for them).
        await holder.end();
        await watcher.end();
      }
      for (const reply of await Promise.all(sent ?? [])) {
        assert.equal(reply.status, 200, JSON.stringify(reply));
        assert.equal((reply.body as { state: unknown }).state, "on");
      }
      assert.deepEqual(await stop(server), { code: 0, signal: null });
    },
  );
}

test(
  "--database-pool-size: bad values, and a size without --database-url, exit 2",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const postgres = ["--database-url", "postgres://127.0.0.1:1/none"];
    const cases: { args: string[]; env?: NodeJS.ProcessEnv; message: RegExp }[] = [
      {
        args: [...postgres, "--database-pool-size", "1"],
        message: /--database-pool-size.*'1' is invalid.*number of connections.*from 2 to 1,000/,
      },
      {
        args: [...postgres, "--database-pool-size", "1001"],
        message: /--database-pool-size.*is invalid/,
      },
      {
        args: [...postgres, "--database-pool-size", "2.5"],
        message: /--database-pool-size.*is invalid/,
      },
      {
        args: [...postgres, "--database-pool-size", "ten"],
        message: /--database-pool-size.*is invalid/,
      },
      {
        args: postgres,
        env: { BACKSTATE_DATABASE_POOL_SIZE: "0" },
        message: /from env 'BACKSTATE_DATABASE_POOL_SIZE' is invalid/,
      },
      {
        args: ["--database-pool-size", "4"],
        message: /--database-pool-size \(BACKSTATE_DATABASE_POOL_SIZE\) needs --database-url/,
      },
      {
        args: [],
        env: { BACKSTATE_DATABASE_POOL_SIZE: "4" },
        message: /--database-pool-size \(BACKSTATE_DATABASE_POOL_SIZE\) needs --database-url/,
      },
    ];
    for (const { args, env, message } of cases) {
      const result = await backstate(["serve", "--port", "0", "--data-dir", dataDir, ...args], {
        ...(env ? { env } : {}),
      });
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(" "));
      assert.equal(result.stdout, "", "nothing was started");
    }
  },
);
