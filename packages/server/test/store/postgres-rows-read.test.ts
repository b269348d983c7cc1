// PostgreSQL statements whose cost must follow the rows they answer or change, not the data around
// them: what each one reads is counted in its plan (EXPLAIN ANALYZE, rows each scan of a table
// returned), so a statement that reads a whole history, or every row of a table, to answer a page
// of ten or end one lease fails here on any machine, however fast.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type pg from "pg";
import { SQL } from "../../src/store/postgres/sql.js";
import { createInstance, instanceKey, seedMachine, T0 } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres rows read");

type PlanNode = {
  "Relation Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
};

/**
 * How many rows the scans of `table` read while `sql` ran with `params`: those they returned and
 * those their filter dropped (both given per loop).
 */
async function rowsRead(
  client: pg.Client,
  table: string,
  sql: string,
  params: unknown[],
): Promise<number> {
  const result = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`,
    params,
  );
  const count = (node: PlanNode): number =>
    (node["Relation Name"] === table
      ? (node["Actual Rows"] + (node["Rows Removed by Filter"] ?? 0)) * node["Actual Loops"]
      : 0) + (node.Plans ?? []).reduce((sum, child) => sum + count(child), 0);
  return count(result.rows[0]!["QUERY PLAN"][0].Plan);
}

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  describe("postgres rows read", () => {
    test("a history page reads its own rows, not the instance's whole history", async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema);
      try {
        await seedMachine(store, "org_a");
        const key = instanceKey("org_a", "long");
        const id = await createInstance(store, key);
        // A neighbour with history of its own, which no page of `key` may show.
        await createInstance(store, instanceKey("org_a", "short"));
        const length = 3000;
        await schemas.sql(schema, async (client) => {
          // The history written directly: 3,000 commits through the store would take a while.
          await client.query(
            `INSERT INTO transitions (instance_id, sequence, event, state, created_at)
             SELECT $1, s, '{"type":"inc","n":' || s || '}', '"busy"', $2::bigint + s
             FROM generate_series(2, $3) AS s`,
            [id, T0, length],
          );
          await client.query("UPDATE instances SET sequence = $2 WHERE id = $1", [id, length]);
          await client.query("ANALYZE");
        });

        // The pages hold what they held before: the right instance's rows, in order.
        const sequences = async (page: Parameters<typeof store.listTransitions>[1]) =>
          (await store.listTransitions(key, page)).map((row) => row.sequence);
        const from = (start: number, step: number) =>
          Array.from({ length: 10 }, (_, i) => start + i * step);
        assert.deepEqual(await sequences({ limit: 10 }), from(1, 1));
        assert.deepEqual(await sequences({ afterSequence: 1500, limit: 10 }), from(1501, 1));
        assert.deepEqual(await sequences({ limit: 10, newestFirst: true }), from(length, -1));
        assert.deepEqual(
          await sequences({ afterSequence: 1500, limit: 10, newestFirst: true }),
          from(1499, -1),
        );
        assert.deepEqual(
          (await store.listTransitions(key, { limit: 2 })).map((row) => row.event),
          ['{"type":"xstate.init"}', '{"type":"inc","n":2}'],
        );
        assert.deepEqual(await sequences({ afterSequence: length, limit: 10 }), []);
        assert.deepEqual(
          await store.listTransitions(instanceKey("org_a", "missing"), { limit: 10 }),
          [],
        );
        assert.deepEqual(
          await store.listTransitions(instanceKey("org_b", "long"), { limit: 10 }),
          [],
        );

        // Each page reads its 10 rows' sizes, then those 10 rows: 20, wherever it starts.
        const maxBytes = 1_000_000;
        await schemas.sql(schema, async (client) => {
          const scope = ["org_a", "counter", "long"];
          for (const after of [0, 1500]) {
            const read = await rowsRead(client, "transitions", SQL.selectTransitions, [
              ...scope,
              after,
              10,
              maxBytes,
            ]);
            assert.ok(read <= 20, `oldest first after ${after}: ${read} rows read`);
          }
          for (const before of [Number.MAX_SAFE_INTEGER, 1500]) {
            const read = await rowsRead(client, "transitions", SQL.selectTransitionsNewestFirst, [
              ...scope,
              before,
              10,
              maxBytes,
            ]);
            assert.ok(read <= 20, `newest first before ${before}: ${read} rows read`);
          }
        });
      } finally {
        await store.close();
      }
    });

    test("ending a lease reads the leases it ends and those run out, not every lease", async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema);
      try {
        const key = instanceKey("org_a", "i1");
        const other = instanceKey("org_a", "i2");
        await schemas.sql(schema, async (client) => {
          // Many leases that hold (written directly), and two of this node that have run out.
          await client.query(
            `INSERT INTO service_leases (org_id, machine_name, instance_name, node_id, until)
             SELECT 'org_' || (n % 100), 'counter', 'i' || n, 'node-b', $1::bigint
             FROM generate_series(1, 5000) AS n`,
            [T0 + 60_000],
          );
          await client.query("ANALYZE");
        });
        await store.leaseServices("node-a", [key, other], T0 + 1000);
        await store.leaseServices("node-b", [key], T0 + 60_000);

        // What it ends: this node's leases named, and every lease run out (its own, named or not,
        // included); another node's lease on the same instance stays.
        await store.endServiceLeases("node-a", [key, key], T0 + 2000);
        assert.equal(await store.servicesLeasedElsewhere(key, "node-c", T0), true, "b's stays");
        assert.equal(await store.servicesLeasedElsewhere(key, "node-b", T0), false, "a's gone");
        assert.equal(await store.servicesLeasedElsewhere(other, "node-c", T0), false, "run out");
        await store.leaseServices("node-a", [other], T0 + 1000);
        await store.endServiceLeases("node-a", [key], T0);
        assert.equal(await store.servicesLeasedElsewhere(other, "node-c", T0), true, "not named");

        await schemas.sql(schema, async (client) => {
          const scope = [["org_a"], ["counter"], ["i2"], "node-a"];
          const read = await rowsRead(client, "service_leases", SQL.endServiceLeases, [
            ...scope,
            T0 + 2000,
          ]);
          // The lease it ends, found by its key, and the same lease again as run out.
          assert.ok(read <= 2, `${read} rows read`);
          const { rows } = await client.query<{ n: string }>(
            "SELECT count(*) AS n FROM service_leases",
          );
          assert.equal(rows[0]?.n, "5001");
        });
      } finally {
        await store.close();
      }
    });
  });
}
