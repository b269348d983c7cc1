// The PostgreSQL purge of deleted instances' history across nodes: a purge another node is in the
// middle of (its chunk's transaction holds the queue row) is skipped, not waited for, and no two
// nodes ever delete the same rows.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createInstance, eventCommit, instanceKey, seedMachine } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres history purge");

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  test("a purge whose queue row another node holds is skipped, not waited for", async () => {
    const schema = schemas.fresh();
    const store = await schemas.migrated(schema);
    try {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      for (let sequence = 1; sequence < 5; sequence++) {
        await store.commitTransition(eventCommit(key, id, sequence));
      }
      await store.deleteInstance(key);
      await schemas.sql(schema, async (client) => {
        // Another node's chunk, in the middle of its transaction.
        await client.query("BEGIN");
        await client.query("SELECT instance_id FROM history_purges FOR UPDATE");
        // Waiting would hang here until the transaction ends below (the test's timeout).
        assert.equal(await store.purgeDeletedHistory(100), 0);
        await client.query("COMMIT");
      });
      assert.equal(await store.purgeDeletedHistory(100), 5);
      assert.equal(await store.purgeDeletedHistory(100), 0);
    } finally {
      await store.close();
    }
  });

  test("two nodes purging at once remove every queued row between them", async () => {
    const schema = schemas.fresh();
    const nodes = [await schemas.migrated(schema), await schemas.migrated(schema)];
    const [first] = nodes;
    assert.ok(first);
    try {
      await seedMachine(first, "org_a");
      let rows = 0;
      for (const name of ["a", "b", "c"]) {
        const key = instanceKey("org_a", name);
        const id = await createInstance(first, key);
        for (let sequence = 1; sequence < 40; sequence++) {
          await first.commitTransition(eventCommit(key, id, sequence));
        }
        rows += 40;
        await first.deleteInstance(key);
      }
      // Each node purges until it finds nothing; their counts add up to every row exactly once.
      const purged = await Promise.all(
        nodes.map(async (node) => {
          let total = 0;
          for (let found = -1; found !== 0; total += found === -1 ? 0 : found) {
            found = await node.purgeDeletedHistory(7);
          }
          return total;
        }),
      );
      // A node that found every queued purge held by the other stopped early: the rest is there.
      let rest = 0;
      for (let found = -1; found !== 0; rest += found === -1 ? 0 : found) {
        found = await first.purgeDeletedHistory(7);
      }
      assert.equal(purged.reduce((a, b) => a + b, 0) + rest, rows);
      const left = await schemas.sql(schema, (client) =>
        client.query<{ n: number }>(
          "SELECT (SELECT count(*) FROM transitions)::int + (SELECT count(*) FROM history_purges)::int AS n",
        ),
      );
      assert.equal(left.rows[0]?.n, 0);
    } finally {
      for (const node of nodes) await node.close();
    }
  });
}
