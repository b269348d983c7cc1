// PostgreSQL: a commit batch whose backend is terminated mid-statement (pg_terminate_backend, a
// database shutting down). The server ends the session with a FATAL error, which pg hands to the
// statement under way while its socket still looks open: the connection must not go back to the
// pool, where the next caller waiting for one (a read, another batch) would get it and fail.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pg from "pg";
import { createInstance, eventCommit, instanceKey, seedMachine } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: a terminated batch");

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  /** Polls `check` until it answers something, for up to 10 s. */
  async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = await check();
      if (found !== undefined) return found;
      assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  describe("postgres: a batch whose backend is terminated", () => {
    test("its connection is dropped, not handed to the read waiting for one", async () => {
      const schema = schemas.fresh();
      // Named after the schema, so the test finds this store's sessions; a pool of one, so the
      // read below waits for the batch's connection.
      const named = new URL(url);
      named.searchParams.set("application_name", schema);
      const store = await schemas.migrated(schema, {
        connectionString: named.toString(),
        poolSize: 1,
      });
      const session = () =>
        new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      const admin = session();
      const blocker = session();
      await admin.connect();
      await blocker.connect();
      try {
        await seedMachine(store, "org_a");
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(store, key);
        await blocker.query("BEGIN");
        await blocker.query("LOCK TABLE transitions IN ACCESS EXCLUSIVE MODE");
        const committed = store.commitTransition(eventCommit(key, id, 1)).then(
          () => "ok",
          (error: { code?: string }) => error.code,
        );
        // The batch waits for the history table, its connection checked out meanwhile.
        const pid = await until("the batch waits for the lock", async () => {
          const waiting = await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity
             WHERE application_name = $1 AND query LIKE '%backstate_commit_batch%'
               AND wait_event_type = 'Lock'`,
            [schema],
          );
          return waiting.rows[0]?.pid;
        });
        const read = store.loadInstance(key).then(
          (instance) => instance?.sequence,
          (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
        );
        // The read is queued for the pool's only connection by now.
        await new Promise((resolve) => setTimeout(resolve, 50));
        await admin.query("SELECT pg_terminate_backend($1)", [pid]);

        assert.equal(await read, 1, "the read is answered on a connection of its own");
        assert.equal(await committed, "store-error");
        await blocker.query("ROLLBACK");
        const stored = await admin.query<{ sequence: string }>(
          "SELECT sequence FROM instances WHERE id = $1",
          [id],
        );
        assert.equal(Number(stored.rows[0]?.sequence), 1, "nothing of the batch was written");
        const next = await store.commitTransition(eventCommit(key, id, 1));
        assert.equal(next.sequence, 2);
      } finally {
        await blocker.end();
        await admin.end();
        await store.close();
      }
    });
  });
}
