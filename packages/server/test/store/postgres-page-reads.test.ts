// PostgreSQL statements whose cost must follow the page they return, not the data around it: what
// each one reads is counted in its plan (EXPLAIN ANALYZE, rows each scan of a table returned), so
// a statement that reads a whole history, or every row of a table, to answer a page of ten fails
// here on any machine, however fast.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type pg from "pg";
import { SQL } from "../../src/store/postgres/sql.js";
import { createInstance, instanceKey, seedMachine, T0 } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres page reads");

type PlanNode = {
  "Relation Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  Plans?: PlanNode[];
};

/** How many rows the scans of `table` returned while `sql` ran with `params`. */
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
    (node["Relation Name"] === table ? node["Actual Rows"] * node["Actual Loops"] : 0) +
    (node.Plans ?? []).reduce((sum, child) => sum + count(child), 0);
  return count(result.rows[0]!["QUERY PLAN"][0].Plan);
}

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  describe("postgres page reads", () => {
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
  });
}
