// Prechecked reads (engine/read-audience.ts): the readers watching an instance are asked about
// with each step, in the same sandbox call, and each update carries their answers, so a watched
// instance costs no extra sandbox call per update. The answers must be the ones a separate read
// of the committed state would give, and a reader's authorizer must not change the step.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { InstanceUpdate } from "../../src/engine/engine.js";
import { readDecisions, type Reader } from "../../src/engine/read-audience.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const reader = (sub: string): Reader => ({ key: `key:${sub}`, authContext: { sub } });
let n = 0;
const fresh = () => `r-${++n}`;

describe("prechecked reads", () => {
  let h: Harness;
  let machineName: string;
  let readers: Reader[] = [];
  const updates: Array<Extract<InstanceUpdate, { kind: "state" }>> = [];
  const ops: string[] = [];
  const at = (instanceName: string) => ({ orgId: ORG, machineName, instanceName });
  const send = (name: string, event: string) =>
    h.engine.sendEvent({ ...at(name), event, authContext: { sub: "writer" } });
  /** A new instance, created while `readers` watch (none of them is asked about a create). */
  const created = async () => {
    const name = fresh();
    await h.engine.createInstance({ ...at(name), authContext: { sub: "writer" } });
    return name;
  };
  const decisionsFor = (name: string) =>
    updates
      .filter((u) => u.instance.instanceName === name)
      .map((u) => (u.reads ? Object.fromEntries(u.reads) : undefined));

  before(async () => {
    h = await startHarness();
    machineName = await h.deploy("readers-v5.js", "v5-import", "readers");
    h.engine.watchReaders((key) => (key.machineName === machineName ? readers : []));
    h.engine.onInstanceUpdate((update) => {
      if (update.kind === "state") updates.push(update);
    });
    const call = h.pool.call.bind(h.pool);
    h.pool.call = (target, op, payload, options) => {
      ops.push(op);
      return call(target, op, payload, options);
    };
  });
  after(() => h.dispose());

  test("each update carries allowRead's answers on its own state, with no read call", async () => {
    const name = await created();
    readers = [reader("alice"), reader("owner")];
    ops.length = 0;
    await send(name, "inc");
    await send(name, "hide");
    await send(name, "show");
    assert.deepEqual(decisionsFor(name).slice(1), [
      { "key:alice": true, "key:owner": true },
      { "key:alice": false, "key:owner": true },
      { "key:alice": true, "key:owner": true },
    ]);
    assert.deepEqual([...ops], ["send-batch", "send-batch", "send-batch"]);
  });

  test("an unwatched instance's updates carry no answers and its steps ask about nobody", async () => {
    readers = [];
    const name = await created();
    await send(name, "inc");
    assert.deepEqual(decisionsFor(name), [undefined, undefined]);
  });

  test("events processed as one batch each get the answers for their own state", async () => {
    const name = await created();
    readers = [reader("counter")];
    ops.length = 0;
    // Sent together, the later ones reach the instance's mailbox while the first is processed and
    // go to the sandbox as one batch; allowRead answers per step (count 1, 2, 3), not per batch.
    await Promise.all([send(name, "inc"), send(name, "inc"), send(name, "inc")]);
    assert.deepEqual(decisionsFor(name).slice(1), [
      { "key:counter": true },
      { "key:counter": false },
      { "key:counter": false },
    ]);
    assert.ok(ops.length < 3, `the events were batched: ${ops.join(", ")}`);
    assert.ok(!ops.includes("read"), `no separate read call: ${ops.join(", ")}`);
  });

  test("each reader is asked on a copy of its own: one that writes to it changes nothing", async () => {
    const name = await created();
    await send(name, "inc");
    await send(name, "inc");
    // The scribbler sets the count it is shown to -1: the counter after it must still see 3.
    readers = [reader("scribbler"), reader("counter")];
    const state = await send(name, "inc");
    assert.deepEqual(state.publicContext, { count: 3 });
    assert.deepEqual(decisionsFor(name)[3], { "key:scribbler": true, "key:counter": false });
    const stored = await h.engine.readInstance({ ...at(name), authContext: { sub: "alice" } });
    assert.deepEqual(stored.publicContext, { count: 3 });
  });

  test("an allowRead that writes to an object the step left in the context changes nothing", async () => {
    const name = await created();
    // The machine's module keeps the object its last step assigned; the meddler writes to it.
    readers = [reader("meddler"), reader("counter")];
    const state = await send(name, "inc");
    assert.deepEqual(state.publicContext, { count: 1 });
    assert.deepEqual(decisionsFor(name)[1], { "key:meddler": true, "key:counter": true });
    readers = [];
    const stored = await h.engine.readInstance({ ...at(name), authContext: { sub: "alice" } });
    assert.deepEqual(stored.publicContext, { count: 1 });
    assert.deepEqual((await send(name, "inc")).publicContext, { count: 2 });
  });

  test("an allowRead that throws denies its reader and fails no event", async () => {
    const name = await created();
    readers = [reader("thrower"), reader("alice")];
    const state = await send(name, "inc");
    assert.deepEqual(state.publicContext, { count: 1 });
    assert.deepEqual(decisionsFor(name)[1], { "key:thrower": false, "key:alice": true });
  });

  test("an allowRead that tampers with a built-in denies every reader and fails no event", async () => {
    const name = await created();
    readers = [reader("alice"), reader("tamperer")];
    const state = await send(name, "inc");
    assert.deepEqual(state.publicContext, { count: 1 });
    assert.deepEqual(decisionsFor(name)[1], { "key:alice": false, "key:tamperer": false });
    readers = [reader("alice")];
    await send(name, "inc");
    assert.deepEqual(decisionsFor(name)[2], { "key:alice": true }, "the tampering was undone");
  });
});

describe("readDecisions", () => {
  const readers = [reader("a"), reader("b")];

  test("one boolean per reader: the answers by reader key", () => {
    assert.deepEqual(Object.fromEntries(readDecisions(readers, [true, false]) ?? []), {
      "key:a": true,
      "key:b": false,
    });
  });

  test("anything else from the sandbox counts as no answer", () => {
    for (const readable of [undefined, [true], [true, false, true], [true, "yes"], [1, 0], {}]) {
      assert.equal(readDecisions(readers, readable), undefined, JSON.stringify(readable));
    }
    assert.equal(readDecisions([], []), undefined);
  });
});
