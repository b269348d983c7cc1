import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "./clock.js";
import { HISTORY_PURGE_CHUNK_ROWS, HistoryPurger } from "./history-purger.js";
import { silentLogger, type Logger } from "./logger.js";

/** A queue of `rows` history rows the fake store purges a chunk at a time, each on request. */
function fakeQueue(rows: number) {
  const state = { left: rows, calls: 0, inChunk: false };
  const waiting: Array<() => void> = [];
  return {
    state,
    /** Lets the chunk that is waiting (if any) finish. */
    release: () => waiting.shift()?.(),
    store: {
      purgeDeletedHistory: async (maxRows: number) => {
        state.calls++;
        state.inChunk = true;
        await new Promise<void>((resolve) => waiting.push(resolve));
        state.inChunk = false;
        const purged = Math.min(maxRows, state.left);
        state.left -= purged;
        return purged;
      },
    },
  };
}

/** Lets the purger run until it waits on the store again (it yields one turn between chunks). */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
}

test("stop() waits for the chunk in progress only, and leaves the rest queued", async () => {
  const queue = fakeQueue(10 * HISTORY_PURGE_CHUNK_ROWS);
  const clock = new ManualClock();
  const purger = new HistoryPurger({ store: queue.store, clock, logger: silentLogger });
  purger.start();
  queue.release();
  await settle();
  assert.equal(queue.state.calls, 2);
  assert.equal(queue.state.inChunk, true);
  const stopped = purger.stop();
  queue.release();
  await stopped;
  await settle();
  assert.equal(queue.state.calls, 2, "no chunk after stop");
  assert.equal(queue.state.left, 8 * HISTORY_PURGE_CHUNK_ROWS);
  // Nothing armed: a stopped server's process is not kept alive by an idle look.
  clock.advance(24 * 60 * 60 * 1000);
  await settle();
  assert.equal(queue.state.calls, 2);
});

test("an idle purger looks again when woken (a delete) and after a while (other nodes' purges)", async () => {
  const queue = fakeQueue(0);
  const clock = new ManualClock();
  const purger = new HistoryPurger({ store: queue.store, clock, logger: silentLogger });
  purger.start();
  queue.release();
  await settle();
  assert.equal(queue.state.calls, 1);

  queue.state.left = 5;
  purger.wake();
  queue.release(); // 5 rows
  await settle();
  queue.release(); // nothing left
  await settle();
  assert.deepEqual([queue.state.calls, queue.state.left], [3, 0]);

  clock.advance(60_000);
  assert.equal(queue.state.calls, 4);
  queue.release();
  await purger.stop();
});

test("a failed chunk is logged, and tried again at the next look", async () => {
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };
  let fail = true;
  let calls = 0;
  const store = {
    purgeDeletedHistory: () => {
      calls++;
      return fail ? Promise.reject(new Error("disk full")) : Promise.resolve(0);
    },
  };
  const clock = new ManualClock();
  const purger = new HistoryPurger({ store, clock, logger });
  purger.start();
  await settle();
  assert.deepEqual(warnings, ["could not purge the history of deleted instances"]);
  fail = false;
  clock.advance(60_000);
  await settle();
  assert.equal(calls, 2);
  await purger.stop();
});
