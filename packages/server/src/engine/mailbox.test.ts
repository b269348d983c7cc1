import assert from "node:assert/strict";
import { test } from "node:test";
import { ExternalInbox, type Letter } from "./external-inbox.js";
import { KeyedMailbox } from "./mailbox.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("one key runs one task at a time, in order; other keys run meanwhile", async () => {
  const mailbox = new KeyedMailbox();
  const log: string[] = [];
  let releaseA!: () => void;
  const a1 = mailbox.run("a", async () => {
    log.push("a1 start");
    await new Promise<void>((resolve) => (releaseA = resolve));
    log.push("a1 end");
  });
  const a2 = mailbox.run("a", () => Promise.resolve(log.push("a2")));
  const b1 = mailbox.run("b", () => Promise.resolve(log.push("b1")));
  await b1;
  assert.deepEqual(log, ["a1 start", "b1"], "b ran while a was busy; a2 waited");
  releaseA();
  await Promise.all([a1, a2]);
  assert.deepEqual(log, ["a1 start", "b1", "a1 end", "a2"]);
  assert.equal(mailbox.busyKeys, 0, "idle keys hold nothing");
});

test("a failing task does not stop the ones behind it", async () => {
  const mailbox = new KeyedMailbox();
  const failed = mailbox.run("a", () => Promise.reject(new Error("boom")));
  const next = mailbox.run("a", () => Promise.resolve("ran"));
  await assert.rejects(failed, /boom/);
  assert.equal(await next, "ran");
});

test("events posted while their instance is busy are delivered together, in order", async () => {
  const mailbox = new KeyedMailbox();
  const batches: string[][] = [];
  const inbox = new ExternalInbox<string>(mailbox, (_ref, letters: Array<Letter<string>>) => {
    batches.push(letters.map((l) => l.event.type));
    letters.forEach((l) => l.resolve(`done ${l.event.type}`));
    return Promise.resolve(letters.length);
  });
  let release!: () => void;
  const busy = mailbox.run("i", () => new Promise<void>((resolve) => (release = resolve)));
  const answers = ["e1", "e2", "e3"].map((type) => inbox.post("i", { type }, {}));
  await tick();
  assert.deepEqual(batches, [], "nothing delivered while the instance is busy");
  release();
  await busy;
  assert.deepEqual(await Promise.all(answers), ["done e1", "done e2", "done e3"]);
  assert.deepEqual(batches, [["e1", "e2", "e3"]]);
});

test("other work closes the batch: later events do not overtake it", async () => {
  const mailbox = new KeyedMailbox();
  const order: string[] = [];
  const inbox = new ExternalInbox<void>(mailbox, (_ref, letters) => {
    for (const l of letters) {
      order.push(l.event.type);
      l.resolve();
    }
    return Promise.resolve(letters.length);
  });
  let release!: () => void;
  const busy = mailbox.run("i", () => new Promise<void>((resolve) => (release = resolve)));
  const first = inbox.post("i", { type: "before" }, {});
  inbox.close("i");
  const timer = mailbox.run("i", () => Promise.resolve(void order.push("timer")));
  const second = inbox.post("i", { type: "after" }, {});
  await tick();
  release();
  await Promise.all([busy, first, timer, second]);
  assert.deepEqual(order, ["before", "timer", "after"]);
});

test("a batch that processes only a prefix gets the rest delivered next; a failure rejects only its chunk", async () => {
  const mailbox = new KeyedMailbox();
  const calls: string[][] = [];
  const inbox = new ExternalInbox<string>(mailbox, (_ref, letters) => {
    calls.push(letters.map((l) => l.event.type));
    if (letters[0]?.event.type === "bad") return Promise.reject(new Error("instance gone"));
    // Like a step that sent events to itself: only the first is processed this time.
    letters[0]?.resolve(letters[0].event.type);
    return Promise.resolve(1);
  });
  let release!: () => void;
  const busy = mailbox.run("i", () => new Promise<void>((resolve) => (release = resolve)));
  const a = inbox.post("i", { type: "a" }, {});
  const b = inbox.post("i", { type: "b" }, {});
  await tick();
  release();
  await busy;
  assert.equal(await a, "a");
  assert.equal(await b, "b");
  assert.deepEqual(calls, [["a", "b"], ["b"]]);
  const bad = inbox.post("i", { type: "bad" }, {});
  await assert.rejects(bad, /instance gone/);
});
