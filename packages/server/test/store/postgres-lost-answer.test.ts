// A group-commit batch whose connection breaks mid-statement. When the batch committed and only
// its answer was lost, its commits are reported as the batch answered (written ones written: their
// effects must run, and a caller told "failed" would retry and apply its event twice). When it
// never reached the database, or had not committed, they fail with store-error, and the batch can
// no longer commit later. An identical commit by another node is not taken for this one's.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { COMMIT_BATCH, DEFINE_COMMIT_BATCH } from "../../src/store/postgres/commit-function.js";
import { CuttingProxy } from "../support/cutting-proxy.js";
import {
  createCommit,
  createInstance,
  eventCommit,
  instanceKey,
  outcomeCode,
  seedMachine,
  T0,
} from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

// A batch as commit.ts sends it, of one plain event commit to an instance that does not exist.
const NOWHERE_BATCH = JSON.stringify(
  [{ k: "e", o: "org_a", m: "counter", n: "nowhere", id: 0, v: "ver_org_a", es: 1, ep: "[]" }].map(
    (element) => ({ ...element, s: "{}", p: "[]", e: "{}", st: '"a"', at: 1, np: "", f: 1 }),
  ),
);

// The batch statement's name, which every execution of it sends.
const BATCH_STATEMENT = "bs_commit_batch_v";

const url = testDatabaseUrl("postgres lost answers");
if (url !== undefined) {
  const schemas = new TestSchemas(url);
  let proxy: CuttingProxy;
  before(async () => {
    const target = new URL(url);
    proxy = await CuttingProxy.start({
      host: target.hostname,
      port: Number(target.port || 5432),
    });
  });
  after(() => proxy.close());

  /** A store whose connections go through the proxy, and one on the same schema that does not. */
  const openPair = async () => {
    const schema = schemas.fresh();
    // Named after the schema, so a test can tell this store's sessions from any other's.
    const through = new URL(proxy.urlFor(url));
    through.searchParams.set("application_name", schema);
    const cut = await schemas.migrated(schema, { connectionString: through.toString() });
    const direct = await schemas.migrated(schema);
    await seedMachine(cut, "org_a");
    return { cut, direct, schema };
  };

  describe("postgres: a batch whose connection breaks", () => {
    test("committed, its answer lost: each commit is reported as the batch answered", async () => {
      const { cut, direct } = await openPair();
      try {
        const key = instanceKey("org_a", "i1");
        const other = instanceKey("org_a", "i2");
        const id = await createInstance(cut, key);
        const otherId = await createInstance(cut, other);
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "after-answer" });
        // One batch: a commit that is written, and one the database refuses (a stale sequence).
        const [written, refused] = await Promise.allSettled([
          cut.commitTransition(eventCommit(key, id, 1)),
          cut.commitTransition(eventCommit(other, otherId, 7)),
        ]);
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.deepEqual(written.status === "fulfilled" ? written.value : written.reason, {
          instanceId: id,
          sequence: 2,
        });
        assert.equal(outcomeCode(refused), "conflict");
        assert.equal((await direct.loadInstance(key))?.sequence, 2);
        assert.equal((await direct.loadInstance(other))?.sequence, 1);
        // The store goes on as usual.
        const next = await cut.commitTransition(eventCommit(key, id, 2));
        assert.equal(next.sequence, 3);
      } finally {
        await cut.close();
        await direct.close();
      }
    });

    test("committed, its answer lost as the database went away: reported written once it is back", async () => {
      const { cut, direct } = await openPair();
      try {
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(cut, key);
        // A restart, say: the answer is lost, and the database refuses connections for a while.
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "after-answer", down: true });
        const written = cut.commitTransition(eventCommit(key, id, 1)).then(
          (result) => result,
          (error: { code?: string }) => error.code,
        );
        while (!proxy.down) await new Promise((resolve) => setTimeout(resolve, 10));
        await new Promise((resolve) => setTimeout(resolve, 500));
        proxy.comeUp();
        assert.deepEqual(await written, { instanceId: id, sequence: 2 });
        assert.equal((await direct.loadInstance(key))?.sequence, 2);
        const next = await cut.commitTransition(eventCommit(key, id, 2));
        assert.equal(next.sequence, 3);
      } finally {
        proxy.comeUp();
        await cut.close();
        await direct.close();
      }
    });

    test("another node's identical commit won: this one is reported refused, not written", async () => {
      const { cut, direct } = await openPair();
      try {
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(cut, key);
        // The same event, state and time as the commit below, but another context: only the
        // batch's own answer tells the two apart.
        await direct.commitTransition(
          eventCommit(key, id, 1, { snapshot: JSON.stringify({ value: "busy", fromB: true }) }),
        );
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "after-answer" });
        const [lost] = await Promise.allSettled([cut.commitTransition(eventCommit(key, id, 1))]);
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.equal(outcomeCode(lost), "conflict");
        const stored = await direct.loadInstance(key);
        assert.equal(stored?.sequence, 2);
        assert.deepEqual(JSON.parse(stored?.snapshot ?? "null"), { value: "busy", fromB: true });
      } finally {
        await cut.close();
        await direct.close();
      }
    });

    test("never sent on: its commits fail with store-error and nothing is written", async () => {
      const { cut, direct } = await openPair();
      try {
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(cut, key);
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "before-sending" });
        const [lost] = await Promise.allSettled([cut.commitTransition(eventCommit(key, id, 1))]);
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.equal(outcomeCode(lost), "store-error");
        assert.equal((await direct.loadInstance(key))?.sequence, 1);
        assert.equal((await direct.listTransitions(key, { limit: 10 })).length, 1);
        const next = await cut.commitTransition(eventCommit(key, id, 1));
        assert.equal(next.sequence, 2);
      } finally {
        await cut.close();
        await direct.close();
      }
    });

    test("still running when given up: reported failed, and it can no longer commit", async () => {
      const { cut, direct, schema } = await openPair();
      const blocker = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      await blocker.connect();
      try {
        const key = instanceKey("org_a", "i1");
        // A transaction inserting the same instance holds the batch's create on the unique index.
        await blocker.query("BEGIN");
        await blocker.query(
          `INSERT INTO instances (org_id, machine_name, name, machine_version_id, snapshot,
             status, sequence, pending_services, created_at, updated_at)
           VALUES ($1, $2, $3, $4, '{}', 'running', 1, '[]', $5, $5)`,
          [key.orgId, key.machineName, key.instanceName, "ver_org_a", T0],
        );
        // The client's side breaks once the batch is on its way; the database goes on with it.
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "after-sending" });
        const [lost] = await Promise.allSettled([cut.commitTransition(createCommit(key))]);
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.equal(outcomeCode(lost), "store-error");
        // The way clears: the batch creates the instance, then finds its token taken, and all of
        // it is undone.
        await blocker.query("ROLLBACK");
        await waitUntilIdle(schema);
        assert.equal(await direct.loadInstance(key), undefined);
      } finally {
        await blocker.end();
        await cut.close();
        await direct.close();
      }
    });
  });

  test("answers an hour old are purged as batches go; fences stay", async () => {
    const { cut, direct, schema } = await openPair();
    await cut.close();
    await direct.close();
    await schemas.sql(schema, async (client) => {
      await client.query(DEFINE_COMMIT_BATCH);
      await client.query(
        `INSERT INTO batch_outcomes (token, results, created_at)
         VALUES ('old-answer', '[]', 0), ('old-fence', NULL, 0)`,
      );
      // The purge runs in about one batch in a hundred, by random(): seeded, the run is the same
      // every time.
      await client.query("SELECT setseed(0.25)");
      const tokens = async () =>
        (await client.query<{ token: string }>("SELECT token FROM batch_outcomes")).rows.map(
          (row) => row.token,
        );
      let batches = 0;
      while ((await tokens()).includes("old-answer") && batches < 2_000) {
        // A batch of one event for no instance: it writes nothing but its answer (a conflict),
        // and now and then purges.
        await client.query(COMMIT_BATCH, [NOWHERE_BATCH, 1, "bs_none", "", `t${batches++}`, null]);
      }
      const left = await tokens();
      assert.ok(!left.includes("old-answer"), `purged within ${batches} batches`);
      assert.ok(left.includes("old-fence"), "a fence is never purged");
      assert.ok(left.includes(`t${batches - 1}`), "recent answers stay");
    });
  });

  /** Waits until no session of the store named `schema` runs a statement (the late batch ended). */
  async function waitUntilIdle(schema: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const busy = await schemas.sql(schema, (client) =>
        client.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
          [schema],
        ),
      );
      if (busy.rowCount === 0) return;
      assert.ok(Date.now() < deadline, "the late batch is still running");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
