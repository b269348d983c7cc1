// SQLite group commit beyond the contract: the batch cap, a batch whose transaction fails as a
// whole, and a commit that fails halfway through its own writes.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { openSqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite/index.js";
import {
  createCommit,
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  timer,
} from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "backstate-group-commit-"));
after(() => rmSync(root, { recursive: true, force: true }));

async function seeded(options: SqliteStoreOptions) {
  const store = openSqliteStore(options);
  await store.migrate();
  await seedMachine(store, "org_a");
  return store;
}

test("a batch takes at most maxBatchSize commits; the rest go to the next one", async () => {
  const store = await seeded({ path: ":memory:", maxBatchSize: 8 });
  try {
    const before = store.stats.batches;
    const keys = Array.from({ length: 20 }, (_, i) => instanceKey("org_a", `i${i}`));
    await Promise.all(keys.map((key) => store.commitTransition(createCommit(key))));
    assert.equal(store.stats.batches - before, 3);
    for (const key of keys) assert.equal((await store.loadInstance(key))?.sequence, 1);
  } finally {
    await store.close();
  }
});

test("when the batch's transaction cannot start, every commit in it fails and none is written", async () => {
  const path = join(root, "locked.db");
  const store = await seeded({ path, busyTimeoutMs: 20 });
  // Another process holds the write lock past our busy timeout.
  const other = new Database(path);
  try {
    other.exec("BEGIN IMMEDIATE");
    const keys = ["a", "b", "c"].map((name) => instanceKey("org_a", name));
    const outcomes = await Promise.allSettled(
      keys.map((key) => store.commitTransition(createCommit(key))),
    );
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      assert.equal((outcome.reason as { code?: string }).code, "store-error");
    }
    other.exec("ROLLBACK");
    for (const key of keys) assert.equal(await store.loadInstance(key), undefined);

    // The lock gone, the same commits go through.
    await Promise.all(keys.map((key) => store.commitTransition(createCommit(key))));
    for (const key of keys) assert.equal((await store.loadInstance(key))?.sequence, 1);
  } finally {
    other.close();
    await store.close();
  }
});

test("a commit failing after some of its writes leaves none of them behind", async () => {
  const store = await seeded({ path: ":memory:" });
  try {
    const key = instanceKey("org_a", "i1");
    const neighbour = instanceKey("org_a", "i2");
    const id = await createInstance(store, key);
    const before = store.stats.batches;
    // The instance row and history row are written before the timer, whose due time is not an
    // integer: the savepoint must undo the first two.
    const [broken, fine] = await Promise.allSettled([
      store.commitTransition(eventCommit(key, id, 1, { timersToArm: [timer("t", 1.5)] })),
      store.commitTransition(createCommit(neighbour)),
    ]);
    assert.equal(store.stats.batches - before, 1);
    assert.equal(broken.status, "rejected");
    assert.equal(fine.status, "fulfilled");
    assert.equal((await store.loadInstance(key))?.sequence, 1);
    assert.equal((await store.listTransitions(key, { limit: 10 })).length, 1);
    assert.equal(await store.nextTimerDue(), undefined);
    // The instance is still writable at its old sequence.
    await store.commitTransition(eventCommit(key, id, 1));
    assert.equal((await store.loadInstance(key))?.sequence, 2);
  } finally {
    await store.close();
  }
});

test("commits made after close are refused", async () => {
  const store = await seeded({ path: ":memory:" });
  await store.close();
  await assert.rejects(store.commitTransition(createCommit(instanceKey("org_a", "i1"))), TypeError);
});
