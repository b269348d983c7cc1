// PostgreSQL: a node runs two group-commit transactions at once, so one batch's round trip does
// not hold up the commits queued behind it; an instance's commits still never run in two at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { createInstance, eventCommit, instanceKey, outcomeCode, seedMachine } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: concurrent commit batches");

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  /** How many sessions wait for `pid`'s locks, once that count has held for a moment. */
  async function waitingFor(watcher: pg.Client, pid: number): Promise<number> {
    const count = async () =>
      Number(
        (
          await watcher.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
            [pid],
          )
        ).rows[0]!.n,
      );
    let seen = -1;
    for (let steady = 0, tries = 0; steady < 20 && tries < 500; tries++) {
      const now = await count();
      steady = now === seen ? steady + 1 : 0;
      seen = now;
      await sleep(10);
    }
    return seen;
  }

  for (const [batches, expected] of [
    [undefined, 2],
    [1, 1],
  ] as const) {
    test(`${batches === undefined ? "by default" : `with maxConcurrentBatches ${batches}`}, ${expected} batches of 3 commits in 3 turns run at once`, async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema, {
        poolSize: 6,
        ...(batches === undefined ? {} : { maxConcurrentBatches: batches }),
      });
      const holder = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      const watcher = new pg.Client({ connectionString: url });
      await Promise.all([holder.connect(), watcher.connect()]);
      try {
        await seedMachine(store, "org_a");
        const keys = ["x", "y", "z"].map((name) => instanceKey("org_a", name));
        const ids = await Promise.all(keys.map((key) => createInstance(store, key)));
        const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!
          .pid;
        await holder.query("BEGIN");
        await holder.query("LOCK TABLE instances IN EXCLUSIVE MODE");
        // Each in a turn of its own: each would start a batch of its own if it may.
        const commits = [];
        for (const [i, key] of keys.entries()) {
          commits.push(store.commitTransition(eventCommit(key, ids[i]!, 1)));
          await new Promise((resolve) => setImmediate(resolve));
        }
        assert.equal(await waitingFor(watcher, pid), expected);
        await holder.query("COMMIT");
        const outcomes = await Promise.allSettled(commits);
        assert.deepEqual(outcomes.map(outcomeCode), ["ok", "ok", "ok"]);
      } finally {
        await holder.end();
        await watcher.end();
        await store.close();
      }
    });
  }
}
