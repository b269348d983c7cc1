// A group-commit batch whose connection breaks mid-statement: when the batch committed and only
// its answer was lost, its commits are reported written (their effects must run, and a caller
// told "failed" would retry and apply its event twice); when it never reached the database, they
// fail with store-error and nothing is written.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CuttingProxy } from "../support/cutting-proxy.js";
import { createInstance, eventCommit, instanceKey, outcomeCode, seedMachine } from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

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

  const openThroughProxy = async () => {
    const store = await schemas.migrated(schemas.fresh(), {
      connectionString: proxy.urlFor(url),
    });
    await seedMachine(store, "org_a");
    return store;
  };

  describe("postgres: a batch whose connection breaks", () => {
    test("committed, its answer lost: its commits are reported written", async () => {
      const store = await openThroughProxy();
      try {
        const key = instanceKey("org_a", "i1");
        const other = instanceKey("org_a", "i2");
        const id = await createInstance(store, key);
        const otherId = await createInstance(store, other);
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "after-answer" });
        // One batch: a commit that is written, and one the database refuses (a stale sequence).
        const [written, refused] = await Promise.allSettled([
          store.commitTransition(eventCommit(key, id, 1)),
          store.commitTransition(eventCommit(other, otherId, 7)),
        ]);
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.deepEqual(written.status === "fulfilled" ? written.value : written.reason, {
          instanceId: id,
          sequence: 2,
        });
        // Why it was refused went with the answer: it is reported failed, as storage failing.
        assert.equal(outcomeCode(refused), "store-error");
        assert.equal((await store.loadInstance(key))?.sequence, 2);
        assert.equal((await store.loadInstance(other))?.sequence, 1);
        // The store goes on as usual.
        const next = await store.commitTransition(eventCommit(key, id, 2));
        assert.equal(next.sequence, 3);
      } finally {
        await store.close();
      }
    });

    test("never sent on: its commits fail with store-error and nothing is written", async () => {
      const store = await openThroughProxy();
      try {
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(store, key);
        proxy.cutNext({ marker: BATCH_STATEMENT, when: "before-sending" });
        const [lost] = await Promise.allSettled([store.commitTransition(eventCommit(key, id, 1))]);
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.equal(outcomeCode(lost), "store-error");
        assert.equal((await store.loadInstance(key))?.sequence, 1);
        assert.equal((await store.listTransitions(key, { limit: 10 })).length, 1);
        const next = await store.commitTransition(eventCommit(key, id, 1));
        assert.equal(next.sequence, 2);
      } finally {
        await store.close();
      }
    });
  });
}
