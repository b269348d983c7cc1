// PostgreSQL: a commit whose instance row another transaction holds (another node's batch, a
// pause, anyone's SELECT … FOR UPDATE) is neither refused for it nor holds up the rest of its
// batch: it is written once the row is let go, on the row as its holder left it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pg from "pg";
import type { PostgresStore } from "../../src/store/postgres/index.js";
import type { InstanceKey } from "../../src/store/store.js";
import { createInstance, eventCommit, instanceKey, outcomeCode, seedMachine } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: locked rows");

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  async function withStore(
    body: (store: PostgresStore, schema: string) => Promise<void>,
    options: { poolSize?: number } = {},
  ) {
    const schema = schemas.fresh();
    const store = await schemas.migrated(schema, options);
    try {
      await seedMachine(store, "org_a");
      await body(store, schema);
    } finally {
      await store.close();
    }
  }

  /** A transaction of its own holding instance `id`'s row `FOR mode`, until ended. */
  async function holdRow(schema: string, id: number, mode: string) {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await client.connect();
    await client.query("BEGIN");
    await client.query(`SELECT 1 FROM instances WHERE id = $1 FOR ${mode}`, [id]);
    const { pid } = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))
      .rows[0]!;
    let ended = false;
    return {
      client,
      /** Resolves once another session waits for this one's locks, or `over` says it is moot. */
      async waitedFor(over: () => boolean): Promise<void> {
        const watcher = new pg.Client({ connectionString: url });
        await watcher.connect();
        try {
          while (!over()) {
            const waiting = await watcher.query(
              "SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
              [pid],
            );
            if (waiting.rowCount !== 0) return;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        } finally {
          await watcher.end();
        }
      },
      /** Ends the transaction (once: later calls do nothing). */
      async end(statement: "COMMIT" | "ROLLBACK" = "COMMIT"): Promise<void> {
        if (ended) return;
        ended = true;
        await client.query(statement);
        await client.end();
      },
    };
  }

  /** Tracks whether `promise` has settled yet. */
  function watch<T>(promise: Promise<T>) {
    const state = { settled: false, promise: Promise.allSettled([promise]).then(([o]) => o) };
    void state.promise.then(() => (state.settled = true));
    return state;
  }

  describe("postgres: locked rows", () => {
    test("commits to a held row wait for it, in order, while the rest of their batch commits", () =>
      withStore(async (store, schema) => {
        const x = instanceKey("org_a", "x");
        const y = instanceKey("org_a", "y");
        const idX = await createInstance(store, x);
        const idY = await createInstance(store, y);
        const held = await holdRow(schema, idX, "SHARE");
        try {
          // One batch: two pipelined commits of x (the second built on the first), one of y.
          const x1 = watch(store.commitTransition(eventCommit(x, idX, 1)));
          const x2 = watch(store.commitTransition(eventCommit(x, idX, 2)));
          const y1 = store.commitTransition(eventCommit(y, idY, 1));
          assert.deepEqual(await y1, { instanceId: idY, sequence: 2 });
          // A later batch, built on x's commits still waiting: it waits behind them.
          const x3 = watch(store.commitTransition(eventCommit(x, idX, 3)));
          await held.waitedFor(() => x1.settled || x2.settled || x3.settled);
          assert.deepEqual([x1.settled, x2.settled, x3.settled], [false, false, false]);
          await held.end();
          const outcomes = await Promise.all([x1.promise, x2.promise, x3.promise]);
          assert.deepEqual(outcomes.map(outcomeCode), ["ok", "ok", "ok"]);
        } finally {
          await held.end("ROLLBACK");
        }
        const history = await store.listTransitions(x, { limit: 10 });
        assert.deepEqual(
          history.map((t) => t.sequence),
          [1, 2, 3, 4],
        );
      }));

    test("a row held long holds up only its own commits: another row's locked commit lands meanwhile", () =>
      withStore(async (store, schema) => {
        // The node's locked-row commits used to share one queue: B's waited behind A's, which
        // waits for A's row (up to 10 s), though B's row was let go long before.
        const a = instanceKey("org_a", "a");
        const b = instanceKey("org_a", "b");
        const idA = await createInstance(store, a);
        const idB = await createInstance(store, b);
        const heldA = await holdRow(schema, idA, "UPDATE");
        const heldB = await holdRow(schema, idB, "UPDATE");
        try {
          const a1 = watch(store.commitTransition(eventCommit(a, idA, 1)));
          await heldA.waitedFor(() => a1.settled);
          const b1 = watch(store.commitTransition(eventCommit(b, idB, 1)));
          await heldB.waitedFor(() => b1.settled);
          await heldB.end();
          assert.equal(outcomeCode(await b1.promise), "ok");
          assert.equal(a1.settled, false, "B's commit landed only once A's had given up");
          await heldA.end();
          assert.equal(outcomeCode(await a1.promise), "ok");
        } finally {
          await heldB.end("ROLLBACK");
          await heldA.end("ROLLBACK");
        }
        for (const key of [a, b]) {
          const history = await store.listTransitions(key, { limit: 10 });
          assert.deepEqual(
            history.map((t) => t.sequence),
            [1, 2],
          );
        }
      }));

    test("commits waiting for held rows leave the pool's other connections to the other commits", () =>
      withStore(
        async (store, schema) => {
          // Two connections: one may wait for a held row, the other stays for ordinary batches.
          const [a, b, c] = ["a", "b", "c"].map((name) => instanceKey("org_a", name)) as [
            InstanceKey,
            InstanceKey,
            InstanceKey,
          ];
          const idA = await createInstance(store, a);
          const idB = await createInstance(store, b);
          const idC = await createInstance(store, c);
          const heldA = await holdRow(schema, idA, "UPDATE");
          const heldB = await holdRow(schema, idB, "UPDATE");
          try {
            const a1 = watch(store.commitTransition(eventCommit(a, idA, 1)));
            await heldA.waitedFor(() => a1.settled);
            const b1 = watch(store.commitTransition(eventCommit(b, idB, 1)));
            // B's commit goes in a batch of its own (cut on the next turn), and C's after it: had
            // B's then waited for its row too, it would hold the last connection, and C's would
            // get one only once A's or B's wait had given up.
            await new Promise((resolve) => setImmediate(resolve));
            assert.deepEqual(await store.commitTransition(eventCommit(c, idC, 1)), {
              instanceId: idC,
              sequence: 2,
            });
            assert.deepEqual([a1.settled, b1.settled], [false, false]);
            await heldB.end();
            await heldA.end();
            const outcomes = await Promise.all([a1.promise, b1.promise]);
            assert.deepEqual(outcomes.map(outcomeCode), ["ok", "ok"]);
          } finally {
            await heldB.end("ROLLBACK");
            await heldA.end("ROLLBACK");
          }
        },
        { poolSize: 2 },
      ));

    test("a commit to a held row that its holder then changes is refused, with what was built on it", () =>
      withStore(async (store, schema) => {
        const x = instanceKey("org_a", "x");
        const idX = await createInstance(store, x);
        const held = await holdRow(schema, idX, "UPDATE");
        let outcomes: string[];
        try {
          const x1 = watch(store.commitTransition(eventCommit(x, idX, 1)));
          const x2 = watch(store.commitTransition(eventCommit(x, idX, 2)));
          await held.waitedFor(() => x1.settled || x2.settled);
          // The holder pauses the instance: the commits stood on a row that is no more.
          await held.client.query("UPDATE instances SET status = 'paused' WHERE id = $1", [idX]);
          await held.end();
          outcomes = (await Promise.all([x1.promise, x2.promise])).map(outcomeCode) as string[];
        } finally {
          await held.end("ROLLBACK");
        }
        assert.deepEqual(outcomes, ["conflict", "conflict"]);
        const history = await store.listTransitions(x, { limit: 10 });
        assert.deepEqual(
          history.map((t) => t.sequence),
          [1],
        );
      }));
  });
}
