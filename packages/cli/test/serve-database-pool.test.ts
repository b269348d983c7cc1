// `backstate serve --database-pool-size`: the most connections a node's PostgreSQL pool opens.
// Seen from PostgreSQL: commits to instance rows another session holds each wait on a connection
// of their own, up to half the pool (the store's rule), so with 4 connections only 2 of 4 such
// commits can be waiting there at once, where the default pool of 10 lets all 4 wait; and the
// other half of the pool still commits other instances' events meanwhile.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import pg from "pg";
import { call, deploy, serve, stop, tempDir, type Reply, type Served } from "./support/cli.js";
import { freshSchema } from "./support/postgres-schema.js";

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

/** How many of the node's sessions wait for a lock `holder` has. */
async function waitingFor(watcher: pg.Client, applicationName: string, holder: number) {
  const { rows } = await watcher.query<{ waiting: number }>(
    `SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE application_name = $1 AND $2 = ANY (pg_blocking_pids(pid))`,
    [applicationName, holder],
  );
  return rows[0]!.waiting;
}

/**
 * Waits until `most` of the node's sessions wait for the holder's locks, then watches a while
 * longer (a window in which nothing more may happen: 25 looks over ~500 ms) that no more join
 * them. Gives up after 8 s, before the node's own wait for a held row (10 s) would end theirs.
 */
async function waitingCommitsReach(
  watcher: pg.Client,
  applicationName: string,
  holder: number,
  most: number,
): Promise<void> {
  const look = async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const waiting = await waitingFor(watcher, applicationName, holder);
    assert.ok(waiting <= most, `${waiting} commits waited, ${most} may`);
    return waiting;
  };
  const deadline = Date.now() + 8_000;
  while ((await look()) < most) {
    assert.ok(Date.now() < deadline, `fewer than ${most} commits ever waited`);
  }
  for (let i = 0; i < 25; i++) await look();
}

for (const poolSize of [4, undefined]) {
  const size = poolSize ?? 10;
  test(
    `--database-pool-size ${poolSize ?? "(default 10)"}: commits waiting for held rows take at most half of ${size} connections, the rest serve other instances`,
    {
      ...TIMEOUT,
      skip: !PG_URL && !process.env.CI ? "BACKSTATE_TEST_PG_URL is not set" : false,
    },
    async (t) => {
      assert.ok(PG_URL, "CI must run this on PostgreSQL: set BACKSTATE_TEST_PG_URL");
      const applicationName = `bs_pool_${randomBytes(4).toString("hex")}`;
      const database = await freshSchema(PG_URL);
      // The node's connections carry this name, so the test can tell its sessions from others'.
      const nodeUrl = new URL(database.url);
      nodeUrl.searchParams.set("application_name", applicationName);
      const started: { server?: Served } = {};
      // One hook, in this order: the schema is dropped once no session of the node is left on it.
      t.after(async () => {
        started.server?.child.kill("SIGKILL");
        await started.server?.exited;
        await database.drop();
      });
      const server = (started.server = await serve(tempDir(t), [
        "--database-url",
        nodeUrl.toString(),
        ...(poolSize === undefined ? [] : ["--database-pool-size", String(poolSize)]),
      ]));
      const { url } = server;
      const { adminToken: token, orgId } = JSON.parse(
        readFileSync(server.credentialsPath, "utf8"),
      ) as { adminToken: string; orgId: string };
      const toggle = (name: string) =>
        call(url, token, "POST", `/machines/toggle/i/${name}/events`, {
          orgId,
          body: { event: "toggle" },
        });
      await deploy(url, { token, orgId }, "toggle", TOGGLE);
      const held = ["a", "b", "c", "d"];
      const free = ["e", "f", "g", "h"];
      for (const slug of [...held, ...free]) {
        const created = await call(url, token, "POST", "/machines/toggle", {
          orgId,
          body: { slug },
        });
        assert.equal(created.status, 200, JSON.stringify(created));
      }

      // Another session holds four instance rows, as an operator's SELECT … FOR UPDATE would.
      const holder = new pg.Client({
        connectionString: database.url,
      });
      await holder.connect();
      const watcher = new pg.Client({ connectionString: PG_URL });
      await watcher.connect();
      let sent: Array<Promise<Reply>> | undefined;
      try {
        await holder.query("BEGIN");
        await holder.query("SELECT 1 FROM instances WHERE name = ANY ($1) FOR UPDATE", [held]);
        const { pid } = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))
          .rows[0]!;
        sent = held.map(toggle);
        // Half the pool, at most the 4 sent.
        await waitingCommitsReach(watcher, applicationName, pid, Math.min(held.length, size / 2));
        // Meanwhile the rest of the pool commits other instances' events.
        for (const reply of await Promise.all(free.map(toggle))) {
          assert.equal(reply.status, 200, JSON.stringify(reply));
        }
        await holder.query("COMMIT");
        for (const reply of await Promise.all(sent)) {
          assert.equal(reply.status, 200, JSON.stringify(reply));
          assert.equal((reply.body as { state: unknown }).state, "on");
        }
      } finally {
        // Ending the holder's session lets the rows go, whatever happened.
        await holder.end();
        await watcher.end();
        await Promise.allSettled(sent ?? []);
      }
      assert.deepEqual(await stop(server), { code: 0, signal: null });
    },
  );
}
