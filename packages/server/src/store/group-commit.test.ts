// Unit tests of the adapter-independent group-commit queue, with a fake batch runner.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GroupCommitter, type GroupCommitOptions, type Outcome } from "./group-commit.js";

const batchError = (cause: unknown) => new Error("batch failed", { cause });

test("items submitted in one turn share a batch and get their own outcomes", async () => {
  const batches: number[][] = [];
  const committer = new GroupCommitter<number, number>(
    (batch) => {
      batches.push([...batch]);
      return batch.map((n): Outcome<number> =>
        n % 2 === 0 ? { ok: true, value: n * 10 } : { ok: false, error: new Error(`odd ${n}`) },
      );
    },
    { maxBatchSize: 100, batchError },
  );
  const outcomes = await Promise.allSettled([1, 2, 3, 4].map((n) => committer.submit(n)));
  assert.deepEqual(batches, [[1, 2, 3, 4]]);
  assert.equal(committer.batches, 1);
  assert.deepEqual(
    outcomes.map((o) => (o.status === "fulfilled" ? o.value : (o.reason as Error).message)),
    ["odd 1", 20, "odd 3", 40],
  );
});

test("a batch that fails as a whole fails every item in it", async () => {
  const committer = new GroupCommitter<number, number>(
    () => {
      throw new Error("disk on fire");
    },
    { maxBatchSize: 100, batchError },
  );
  const outcomes = await Promise.allSettled([1, 2].map((n) => committer.submit(n)));
  for (const outcome of outcomes) {
    assert.equal(outcome.status, "rejected");
    assert.equal((outcome.reason as Error).message, "batch failed");
    assert.equal(((outcome.reason as Error).cause as Error).message, "disk on fire");
  }
});

test("items arriving while a batch runs wait for the next batch", async () => {
  const batches: number[][] = [];
  let release: () => void = () => {};
  const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
  const committer = new GroupCommitter<number, number>(
    async (batch) => {
      batches.push([...batch]);
      if (batches.length === 1) await firstBatchHeld;
      return batch.map((value) => ({ ok: true, value }));
    },
    { maxBatchSize: 100, batchError },
  );
  const first = committer.submit(1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(batches, [[1]], "the first batch is running");
  const later = [committer.submit(2), committer.submit(3)];
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(batches, [[1]], "no second transaction while the first is open");
  release();
  assert.deepEqual(await Promise.all([first, ...later]), [1, 2, 3]);
  assert.deepEqual(batches, [[1], [2, 3]]);
});

test("the batch size is capped", async () => {
  const sizes: number[] = [];
  const committer = new GroupCommitter<number, number>(
    (batch) => {
      sizes.push(batch.length);
      return batch.map((value) => ({ ok: true, value }));
    },
    { maxBatchSize: 4, batchError },
  );
  await Promise.all(Array.from({ length: 10 }, (_, i) => committer.submit(i)));
  assert.deepEqual(sizes, [4, 4, 2]);
});

test("drain writes what is queued without waiting for the next turn", async () => {
  const seen: number[] = [];
  const committer = new GroupCommitter<number, number>(
    (batch) => {
      seen.push(...batch);
      return batch.map((value) => ({ ok: true, value }));
    },
    { maxBatchSize: 2, batchError },
  );
  const submitted = [1, 2, 3].map((n) => committer.submit(n));
  await committer.drain();
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(await Promise.all(submitted), [1, 2, 3]);
  assert.equal(committer.batches, 2);
});

test("the next batch starts before the callers of the one before it are told", async () => {
  const log: string[] = [];
  let release: () => void = () => {};
  const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
  const committer = new GroupCommitter<number, number>(
    async (batch) => {
      log.push(`batch ${batch.join(",")}`);
      if (batch[0] === 1) await firstBatchHeld;
      return batch.map((value) => ({ ok: true, value }));
    },
    { maxBatchSize: 100, batchError },
  );
  const first = committer.submit(1).then(() => log.push("told 1"));
  await new Promise((resolve) => setImmediate(resolve));
  const second = committer.submit(2).then(() => log.push("told 2"));
  release();
  await Promise.all([first, second]);
  assert.deepEqual(log, ["batch 1", "batch 2", "told 1", "told 2"]);
});

test("a runner that throws synchronously ends its batch: the next items still go", async () => {
  let calls = 0;
  const committer = new GroupCommitter<number, number>(
    (batch) => {
      if (++calls === 1) throw new Error("cannot begin");
      return batch.map((value) => ({ ok: true, value }));
    },
    { maxBatchSize: 100, batchError },
  );
  await assert.rejects(committer.submit(1), { message: "batch failed" });
  assert.equal(await committer.submit(2), 2);
  await committer.drain();
});

test("a synchronous runner's callers are told before its next batch runs", async () => {
  const log: string[] = [];
  const committer = new GroupCommitter<number, number>(
    (batch) => {
      log.push(`batch ${batch.join(",")}`);
      return batch.map((value) => ({ ok: true, value }));
    },
    { maxBatchSize: 2, batchError },
  );
  await Promise.all([1, 2, 3, 4].map((n) => committer.submit(n).then(() => log.push(`told ${n}`))));
  assert.deepEqual(log, ["batch 1,2", "told 1", "told 2", "batch 3,4", "told 3", "told 4"]);
});

test("a runner that always throws fails a long backlog in order, a batch per turn", async () => {
  const failed: number[] = [];
  const committer = new GroupCommitter<number, number>(
    () => {
      throw new Error("locked");
    },
    { maxBatchSize: 1, batchError },
  );
  const items = Array.from({ length: 5_000 }, (_, i) => i);
  await Promise.all(items.map((n) => committer.submit(n).catch(() => failed.push(n))));
  assert.deepEqual(failed, items);
});

test("items still fail when turning the cause into an error fails", async () => {
  const committer = new GroupCommitter<number, number>(
    () => {
      throw new Error("disk on fire");
    },
    {
      maxBatchSize: 100,
      batchError: () => {
        throw new Error("no error for you");
      },
    },
  );
  const outcomes = await Promise.allSettled([committer.submit(1), committer.submit(2)]);
  for (const outcome of outcomes) {
    assert.equal(outcome.status, "rejected");
    assert.equal((outcome.reason as Error).message, "no error for you");
  }
});

test("an item settling after its batch does not hold up the next batch, and drain waits for it", async () => {
  const batches: number[][] = [];
  let finish: (value: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const committer = new GroupCommitter<number, number>(
    (batch) => {
      batches.push([...batch]);
      return batch.map((n): Outcome<number> =>
        n === 1 ? { ok: "later", settles: finished } : { ok: true, value: n },
      );
    },
    { maxBatchSize: 100, batchError },
  );
  let first: number | undefined;
  const one = committer.submit(1).then((value) => (first = value));
  assert.equal(await committer.submit(2), 2);
  assert.equal(await committer.submit(3), 3);
  assert.deepEqual(batches, [[1, 2], [3]]);
  assert.equal(first, undefined);
  let drained = false;
  const draining = committer.drain().then(() => (drained = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(drained, false);
  finish(10);
  await draining;
  await one;
  assert.equal(first, 10);
});

// Batches side by side (PostgreSQL): items are numbered writes of a key (an instance).
type Linked = { n: number; key: string };
const linked = (n: number, key: string): Linked => ({ n, key });
const turn = () => new Promise((resolve) => setImmediate(resolve));
const SIDE_BY_SIDE: GroupCommitOptions<Linked> = {
  maxBatchSize: 100,
  batchError,
  maxConcurrentBatches: 2,
  keyOf: (item) => item.key,
};

/** A runner whose batches each wait until released, recording what each held. */
function heldRunner() {
  const batches: number[][] = [];
  const releases: Array<(fail?: Error) => void> = [];
  const run = (batch: readonly Linked[]) => {
    batches.push(batch.map((item) => item.n));
    return new Promise<Outcome<number>[]>((resolve, reject) =>
      releases.push((fail) =>
        fail ? reject(fail) : resolve(batch.map((item) => ({ ok: true, value: item.n }))),
      ),
    );
  };
  return { batches, releases, run };
}

test("with two batches allowed, items arriving while one runs go at once in a second", async () => {
  const { batches, releases, run } = heldRunner();
  const committer = new GroupCommitter<Linked, number>(run, SIDE_BY_SIDE);
  const first = committer.submit(linked(1, "a"));
  await turn();
  const second = committer.submit(linked(2, "b"));
  await turn();
  assert.deepEqual(batches, [[1], [2]], "the second runs while the first is open");
  const third = committer.submit(linked(3, "c"));
  await turn();
  assert.deepEqual(batches, [[1], [2]], "no third while two are open");
  releases[1]!();
  assert.equal(await second, 2);
  await turn();
  assert.deepEqual(batches, [[1], [2], [3]], "the third once one of them ended");
  releases[0]!();
  releases[2]!();
  assert.deepEqual(await Promise.all([first, third]), [1, 3]);
});

test("an item of a key still running waits for a batch cut after it, in order, with the rest of its key", async () => {
  const { batches, releases, run } = heldRunner();
  const committer = new GroupCommitter<Linked, number>(run, SIDE_BY_SIDE);
  const done = [committer.submit(linked(1, "a"))];
  await turn();
  // 2 and 3 write what 1 (running) writes; 4 something else: only 4 may go beside 1.
  done.push(
    committer.submit(linked(2, "a")),
    committer.submit(linked(3, "a")),
    committer.submit(linked(4, "b")),
  );
  await turn();
  assert.deepEqual(batches, [[1], [4]]);
  releases[1]!();
  await turn();
  assert.deepEqual(batches, [[1], [4]], "1 still runs: 2 and 3 still wait");
  releases[0]!();
  await done[0];
  await turn();
  assert.deepEqual(batches, [[1], [4], [2, 3]], "together, once 1 has settled, in order");
  releases[2]!();
  assert.deepEqual(await Promise.all(done), [1, 2, 3, 4]);
});

test("after a batch fails, none is cut in that turn, even when another running batch ends", async () => {
  const { batches, releases, run } = heldRunner();
  // What an item's dependency was known as when the item's batch was cut: failed or not.
  const failed = new Set<Linked>();
  const dependencyFailed: boolean[] = [];
  const committer = new GroupCommitter<Linked, number>((batch) => {
    for (const item of batch) if (item.n === 3) dependencyFailed.push(failed.has(one));
    return run(batch);
  }, SIDE_BY_SIDE);
  const one = linked(1, "a");
  // As commit-chains.ts learns of a failure: through the item's own rejection.
  const first = committer.submit(one).catch((error: Error) => {
    failed.add(one);
    throw error;
  });
  await turn();
  const second = committer.submit(linked(2, "b"));
  await turn();
  // 3 is built on 1 (the next write of its instance).
  const third = committer.submit(linked(3, "a"));
  // Both end in the same turn: 1 fails first, then 2 succeeds, which would start the next batch.
  releases[0]!(new Error("lost"));
  releases[1]!();
  await assert.rejects(first, /batch failed/);
  assert.equal(await second, 2);
  assert.deepEqual(batches, [[1], [2]], "nothing cut in the turn the failure came");
  await turn();
  assert.deepEqual(batches, [[1], [2], [3]]);
  assert.deepEqual(dependencyFailed, [true], "3 was cut knowing 1 had failed");
  releases[2]!();
  assert.equal(await third, 3);
});

test("drain waits for every batch running, and writes what is queued", async () => {
  const { batches, releases, run } = heldRunner();
  const committer = new GroupCommitter<Linked, number>(run, SIDE_BY_SIDE);
  const submitted = [committer.submit(linked(1, "a"))];
  await turn();
  submitted.push(committer.submit(linked(2, "b")));
  await turn();
  submitted.push(committer.submit(linked(3, "a")));
  let drained = false;
  const draining = committer.drain().then(() => (drained = true));
  await turn();
  assert.equal(drained, false);
  releases[0]!();
  releases[1]!();
  while (releases.length < 3) await turn();
  assert.deepEqual(batches, [[1], [2], [3]]);
  releases[2]!();
  await draining;
  assert.deepEqual(await Promise.all(submitted), [1, 2, 3]);
});

test("more than one batch at once needs keyOf", () => {
  assert.throws(
    () =>
      new GroupCommitter<number, number>(() => [], {
        maxBatchSize: 1,
        batchError,
        maxConcurrentBatches: 2,
      }),
    /needs keyOf/,
  );
});
