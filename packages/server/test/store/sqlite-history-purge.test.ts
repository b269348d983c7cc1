// Regression: deleting an instance with a long history on SQLite deleted the whole history in the
// delete's own statement (1,000,000 rows held the node's only connection, and its event loop,
// for 1.5 to 2.5 s). The delete now leaves the rows to the history purger, which removes them in
// chunks of at most HISTORY_PURGE_CHUNK_ROWS with the event loop's turn between chunks.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { systemClock } from "../../src/engine/clock.js";
import { HISTORY_PURGE_CHUNK_ROWS, HistoryPurger } from "../../src/engine/history-purger.js";
import { silentLogger } from "../../src/engine/logger.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import { createInstance, instanceKey, seedMachine } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "backstate-purge-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const ROWS = 60_000;

test("deleting an instance with a long history leaves it to a purge of many bounded chunks", async () => {
  const path = join(dir, "backstate.db");
  const store = openSqliteStore({ path });
  await store.migrate();
  const raw = new Database(path);
  try {
    await seedMachine(store, "org_a");
    const key = instanceKey("org_a", "long");
    const id = await createInstance(store, key);
    // Written directly: 60,000 commits through the store would make the test slow.
    const insert = raw.prepare(
      "INSERT INTO transitions (instance_id, sequence, event, state, created_at) VALUES (?, ?, ?, ?, 0)",
    );
    raw.transaction(() => {
      for (let sequence = 2; sequence <= ROWS; sequence++) {
        insert.run(id, sequence, '{"type":"inc"}', '"busy"');
      }
    })();
    const count = raw.prepare<[number], number>(
      "SELECT count(*) FROM transitions WHERE instance_id = ?",
    );
    count.pluck();

    assert.equal(await store.deleteInstance(key), true);
    // The delete itself removed none of the history.
    assert.equal(count.get(id), ROWS);

    const chunks: number[] = [];
    let calls = 0;
    let turnsBetweenChunks = 0;
    let turnSeen = true;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const purger = new HistoryPurger({
      store: {
        purgeDeletedHistory: async (maxRows) => {
          // Something else queued on the event loop ran since the last chunk.
          if (calls++ > 0 && turnSeen) turnsBetweenChunks++;
          turnSeen = false;
          setImmediate(() => (turnSeen = true));
          const rows = await store.purgeDeletedHistory(maxRows);
          if (rows > 0) chunks.push(rows);
          else done();
          return rows;
        },
      },
      clock: systemClock,
      logger: silentLogger,
    });
    purger.start();
    await finished;
    await purger.stop();

    assert.equal(count.get(id), 0);
    assert.equal(
      chunks.reduce((a, b) => a + b, 0),
      ROWS,
    );
    assert.ok(chunks.every((rows) => rows <= HISTORY_PURGE_CHUNK_ROWS));
    assert.ok(chunks.length >= ROWS / HISTORY_PURGE_CHUNK_ROWS, `${chunks.length} chunks`);
    // Every look at the store after the first came after the event loop's turn.
    assert.equal(turnsBetweenChunks, calls - 1);
  } finally {
    raw.close();
    await store.close();
  }
});
