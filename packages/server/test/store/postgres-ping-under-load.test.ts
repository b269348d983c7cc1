// A PostgreSQL node whose every pooled connection is busy still passes its health check, as long
// as the database keeps answering: an answer to any statement within the last second stands for
// the check's own query. Regression: the check's query queued behind the busy connections, and
// after 2 s /healthz called a node serving at full speed unhealthy, so a balancer would take out
// the busiest nodes first. A node whose database has answered nothing for a while still asks it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { testDatabaseUrl, TestSchemas } from "./postgres-support.js";

const url = testDatabaseUrl("PostgreSQL ping under load");

/** Whether `promise` has settled within `ms` (it is left to settle later either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, sleep(ms).then(() => false)]);
}

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  test("ping answers at once while the only connection is busy, when the database just answered", async () => {
    const schema = schemas.fresh();
    const store = await schemas.migrated(schema, { poolSize: 1 });
    // Holds the settings table, so the store's next settings statement waits on its only connection.
    const holder = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await holder.connect();
    try {
      // A lookup every request makes: answered (there is no such key), by the database.
      assert.equal(await store.getKey("no-such-key"), undefined);
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE settings IN ACCESS EXCLUSIVE MODE");
      const busy = store.ensureSetting("second", "2");
      assert.equal(await settlesWithin(busy, 100), false, "the pool's only connection is taken");

      // The database answered that lookup well within the last second: no need to ask it again.
      await store.ping();

      // A second later that answer is stale, and the check's own query waits for the connection.
      await sleep(1_100);
      const ping = store.ping();
      assert.equal(await settlesWithin(ping, 300), false, "asks the database, behind the busy one");
      await holder.query("COMMIT");
      assert.equal(await busy, "2");
      await ping;
    } finally {
      await holder.end();
      await store.close();
    }
  });

  test("a closed store's ping fails even right after an answer", async () => {
    const store = await schemas.migrated(schemas.fresh(), { poolSize: 1 });
    assert.equal(await store.getKey("no-such-key"), undefined);
    await store.close();
    await assert.rejects(store.ping(), /closed/);
  });
}
