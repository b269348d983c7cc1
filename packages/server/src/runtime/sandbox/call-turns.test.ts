import assert from "node:assert/strict";
import { test } from "node:test";
import { Writable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import { batchedWriter } from "./batched-writer.js";
import { CallTurns, RUN_MS } from "./call-turns.js";

/** Records, by id, whether each call got its turn (true) or was handed back (false). */
function track(turns: CallTurns, ids: number[]): Map<number, boolean> {
  const outcomes = new Map<number, boolean>();
  for (const id of ids) void turns.next(id).then((run) => outcomes.set(id, run));
  return outcomes;
}

test("calls run one at a time, in arrival order, each once the one before ends", async () => {
  const turns = new CallTurns();
  const outcomes = track(turns, [1, 2, 3]);
  await nextTurn();
  assert.deepEqual([...outcomes], [[1, true]]);
  await nextTurn();
  assert.deepEqual([...outcomes], [[1, true]], "the next waits for the turn to end");
  turns.end();
  await nextTurn();
  turns.end();
  await nextTurn();
  assert.deepEqual(
    [...outcomes],
    [
      [1, true],
      [2, true],
      [3, true],
    ],
  );
});

test("a recall hands back the queued calls named, not the one under way nor those not named", async () => {
  const turns = new CallTurns();
  const outcomes = track(turns, [1, 2, 3, 4]);
  await nextTurn();
  assert.deepEqual(turns.recall([1, 2, 4, 99]), [2, 4]);
  await nextTurn();
  assert.equal(outcomes.get(2), false);
  assert.equal(outcomes.get(4), false);
  turns.end();
  await nextTurn();
  assert.deepEqual([...outcomes.entries()].sort(), [
    [1, true],
    [2, false],
    [3, true],
    [4, false],
  ]);
});

test("a recall hands back a call still waiting for its code, which then never runs", async () => {
  const turns = new CallTurns();
  let loaded!: (handler: string) => void;
  const loading = new Promise<string>((resolve) => (loaded = resolve));
  const waiting = turns.whileLoading(7, loading);
  const other = turns.whileLoading(8, loading);
  assert.deepEqual(turns.recall([7]), [7]);
  loaded("handler");
  assert.equal(await waiting, undefined);
  assert.equal(await other, "handler");
  assert.deepEqual(turns.recall([8]), [], "a call whose code came is no longer waiting for it");
});

test("the next call gets its turn after every queued one was handed back", async () => {
  const turns = new CallTurns();
  const outcomes = track(turns, [1]);
  assert.deepEqual(turns.recall([1]), [1]);
  await nextTurn();
  const later = track(turns, [2]);
  await nextTurn();
  assert.equal(outcomes.get(1), false);
  assert.equal(later.get(2), true);
});

/** A CallTurns on a clock the test moves, logging its flushes and the calls it starts. */
function loggedTurns(ids: number[]) {
  let now = 1_000;
  const log: string[] = [];
  const flush = () => {
    log.push("flush");
    return true;
  };
  const turns = new CallTurns({ flush, now: () => now });
  for (const id of ids)
    void turns.next(id).then((run) => log.push(`${run ? "run" : "back"} ${id}`));
  return { turns, log, advance: (ms: number) => (now += ms) };
}

/** Lets the microtasks queued so far run, without a turn of the event loop. */
const microtasks = () => new Promise<void>((resolve) => queueMicrotask(resolve));

test("calls queued together run back to back, each answer sent before the next starts", async () => {
  const { turns, log, advance } = loggedTurns([1, 2, 3]);
  await nextTurn();
  assert.deepEqual(log, ["run 1"]);
  advance(RUN_MS / 2);
  turns.end();
  await microtasks();
  assert.deepEqual(log, ["run 1", "flush", "run 2"], "no turn of the event loop in between");
  advance(RUN_MS / 4);
  turns.end();
  await microtasks();
  assert.deepEqual(log, ["run 1", "flush", "run 2", "flush", "run 3"]);
  turns.end();
  await nextTurn();
  assert.deepEqual(log.length, 5, "nothing is flushed or run once the queue is empty");
});

test("past RUN_MS of back-to-back calls the next waits for a turn of the event loop", async () => {
  const { turns, log, advance } = loggedTurns([1, 2, 3]);
  await nextTurn();
  advance(RUN_MS);
  turns.end();
  await microtasks();
  assert.deepEqual(log, ["run 1"], "messages read meanwhile are handled first");
  await nextTurn();
  assert.deepEqual(log, ["run 1", "run 2"], "the writer's own immediate sends the answer");
  turns.end();
  await microtasks();
  assert.deepEqual(log, ["run 1", "run 2", "flush", "run 3"], "a new run starts from that turn");
});

test("a recall between back-to-back calls still hands back those not started", async () => {
  const { turns, log } = loggedTurns([1, 2, 3]);
  await nextTurn();
  assert.deepEqual(turns.recall([2]), [2]);
  await microtasks();
  turns.end();
  await microtasks();
  assert.deepEqual(log, ["run 1", "back 2", "flush", "run 3"]);
});

/**
 * A pipe whose reader is behind: it takes each write at once (`taken`), and finishes it only
 * `turns` turns of the event loop later (`written`), as libuv finishes a partial write once the
 * pipe is writable again; meanwhile the stream holds later lines in its own buffer.
 */
function laggingPipe(turns: number) {
  const taken: string[] = [];
  const written: string[] = [];
  const pipe = new Writable({
    decodeStrings: false,
    write(chunk: string, _encoding, done) {
      taken.push(chunk);
      let turnsLeft = turns;
      const step = () => {
        if (--turnsLeft > 0) setImmediate(step);
        else {
          written.push(chunk);
          done();
        }
      };
      setImmediate(step);
    },
  });
  return { pipe, taken, written };
}

/** Runs calls 1 to 3, each writing its answer; answers what `seen` listed as each started. */
async function runThreeCalls(
  turns: CallTurns,
  writer: ReturnType<typeof batchedWriter>,
  seen: readonly string[],
): Promise<Map<number, string[]>> {
  const seenAtStart = new Map<number, string[]>();
  const ran = [1, 2, 3].map(async (id) => {
    assert.equal(await turns.next(id), true);
    seenAtStart.set(id, [...seen]);
    writer.write(`answer ${id}\n`);
    turns.end();
  });
  await Promise.all(ran);
  return seenAtStart;
}

test("while the pipe has not taken an answer, the next call waits for a turn of the event loop", async () => {
  const { pipe, taken } = laggingPipe(1);
  const writer = batchedWriter(pipe);
  // A clock that stands still: the run never expires, only the pipe may end it.
  const turns = new CallTurns({ flush: writer.flush, now: () => 0 });
  const takenAtStart = await runThreeCalls(turns, writer, taken);
  assert.deepEqual(
    takenAtStart.get(3),
    ["answer 1\n", "answer 2\n"],
    "answer 2 left before call 3",
  );
});

test("a call starts only once the answers before it are written, however long the pipe takes", async () => {
  // An answer larger than the pipe holds takes several turns: until then the stream has not
  // written it, and would lose it with the process should the next call hang.
  const { pipe, written } = laggingPipe(3);
  const writer = batchedWriter(pipe);
  // Past RUN_MS at every end: each call waits for a turn of the event loop, and for its answer.
  let now = 0;
  const turns = new CallTurns({
    flush: writer.flush,
    afterWritten: writer.afterWritten,
    now: () => (now += RUN_MS),
  });
  const writtenAtStart = await runThreeCalls(turns, writer, written);
  assert.deepEqual(writtenAtStart.get(2), ["answer 1\n"], "answer 1 was written before call 2");
  assert.deepEqual(writtenAtStart.get(3), ["answer 1\n", "answer 2\n"]);
});

test("the writer calls back once every line given so far is written, at once when none waits", async () => {
  const pending: Array<() => void> = [];
  const pipe = new Writable({
    decodeStrings: false,
    write(_chunk: string, _encoding, done) {
      pending.push(done);
    },
  });
  const writer = batchedWriter(pipe);
  let calls = 0;
  writer.afterWritten(() => calls++);
  assert.equal(calls, 1, "nothing was waiting");
  writer.write("a\n");
  writer.write("b\n");
  writer.afterWritten(() => calls++);
  await nextTurn();
  assert.equal(calls, 1, "both lines still wait for the pipe");
  pending.shift()!();
  await nextTurn();
  assert.equal(calls, 1, "one line still waits");
  while (pending.length > 0) pending.shift()!();
  await nextTurn();
  assert.equal(calls, 2);
});
