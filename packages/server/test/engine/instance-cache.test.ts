// The engine remembers, per instance, the record its own last write left, and builds the
// instance's next write on it instead of loading the row. Two engines on one database (two nodes)
// make a remembered record stale every way a row can change behind it: a commit, a pause, a
// change of pending services, a delete and a create again. None of those is ever written over,
// and every answer is one the instance's current state gives. Runs on SQLite (two engines on one
// file) and on PostgreSQL (two nodes on one schema, with change notices between them).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { openBackstate, type Backstate, type BackstateOptions } from "../../src/backstate.js";
import { systemClock } from "../../src/engine/clock.js";
import type { Logger } from "../../src/engine/logger.js";
import type { InstanceKey, Store, TransitionCommit } from "../../src/store/store.js";
import { testDatabaseUrl } from "../store/postgres-support.js";
import { bundleFixture } from "../support/bundles.js";
import { ORG } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";
import { dropSchema, freshSchemaName } from "../support/store-target.js";

const alice = { sub: "alice" };
const MACHINE = "cached";

/** What a node's engine asked of its store: instance loads, and commits refused as conflicts. */
type Counts = { loads: number; conflicts: number };

type TestNode = Backstate & {
  counts: Counts;
  /** Commits that are written but then fail to answer (a connection that broke just then). */
  faults: { lostAnswers: number };
  logs: string[];
};

function instrumented(counts: Counts, faults: TestNode["faults"]): (store: Store) => Store {
  return (store) =>
    overriding(store, {
      loadInstance: (key: InstanceKey) => {
        counts.loads++;
        return store.loadInstance(key);
      },
      // Calls through in the same turn, so commits still share a group commit.
      commitTransition: async (commit: TransitionCommit) => {
        try {
          const result = await store.commitTransition(commit);
          if (faults.lostAnswers > 0) {
            faults.lostAnswers--;
            throw new Error("the connection broke before the commit's answer came");
          }
          return result;
        } catch (err) {
          if ((err as { code?: string }).code === "conflict") counts.conflicts++;
          throw err;
        }
      },
    });
}

async function openNode(place: Partial<BackstateOptions>): Promise<TestNode> {
  const counts = { loads: 0, conflicts: 0 };
  const faults = { lostAnswers: 0 };
  const logs: string[] = [];
  const record = (message: string) => void logs.push(message);
  const logger: Logger = { debug: record, info: record, warn: record, error: record };
  const node = await openBackstate({
    ...place,
    clock: systemClock,
    logger,
    settleTimeoutMs: 50,
    sandboxes: { size: 1, memoryLimitMb: 128, callTimeoutMs: 5000 },
    wrapStore: instrumented(counts, faults),
  });
  return { ...node, counts, faults, logs };
}

type Target = {
  name: string;
  open(): Promise<[TestNode, TestNode]>;
  dispose(): Promise<void>;
  /** PostgreSQL nodes hear of each other's commits. */
  notices: boolean;
};

const targets: Target[] = [];
{
  let dir = "";
  targets.push({
    name: "SQLite, two engines on one file",
    notices: false,
    async open() {
      dir = mkdtempSync(join(tmpdir(), "backstate-instance-cache-"));
      const a = await openNode({ dataDir: dir });
      return [a, await openNode({ dataDir: dir })];
    },
    dispose: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  });
}
const url = testDatabaseUrl("instance cache on PostgreSQL");
if (url !== undefined) {
  const schema = freshSchemaName();
  const place = { databaseUrl: url, postgres: { schema, poolSize: 4 } };
  targets.push({
    name: "PostgreSQL, two nodes on one schema",
    notices: true,
    async open() {
      // One after the other: the first creates the schema.
      const a = await openNode({ ...place, nodeId: "node_a" });
      return [a, await openNode({ ...place, nodeId: "node_b" })];
    },
    dispose: () => dropSchema(url, schema),
  });
}

for (const target of targets) {
  describe(`instance cache (${target.name})`, () => {
    let a: TestNode;
    let b: TestNode;
    let n = 0;
    let name = "";
    const at = () => ({ orgId: ORG, machineName: MACHINE, instanceName: name });
    const create = (node: TestNode) => node.engine.createInstance({ ...at(), authContext: alice });
    const send = (node: TestNode, event: string) =>
      node.engine.sendEvent({ ...at(), event, authContext: alice });
    const count = async (node: TestNode, event = "inc") =>
      ((await send(node, event)).publicContext as { count: number }).count;
    const events = async () =>
      (await a.store.listTransitions(at(), { limit: 100 })).map(
        (t) => (JSON.parse(t.event) as { type: string }).type,
      );
    /**
     * Left hanging on b: b stops the service at its settle deadline (50 ms) and ends its lease
     * on the instance; only then is the service lost to a, which leaves a service another node
     * runs be (services-across-nodes.test.ts). Answers once b's lease is gone.
     */
    const hangOnB = async () => {
      assert.equal((await send(b, "hang")).state, "hanging");
      const deadline = Date.now() + 10_000;
      while (await a.store.servicesLeasedElsewhere(at(), "a test", Date.now())) {
        if (Date.now() > deadline) throw new Error("b's service lease never ended");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const resetCounts = () => {
      for (const node of [a, b]) Object.assign(node.counts, { loads: 0, conflicts: 0 });
    };

    before(async () => {
      [a, b] = await target.open();
      await a.store.createOrg({ id: ORG, name: "test", createdAt: Date.now() });
      await a.engine.createMachine(ORG, MACHINE);
      await a.engine.createMachineVersion({
        orgId: ORG,
        machineName: MACHINE,
        code: await bundleFixture("workflow-v5.js", "v5-import"),
        makeCurrent: true,
      });
    });
    after(async () => {
      await a.close();
      await b.close();
      await target.dispose();
    });
    // Each test on an instance of its own.
    const fresh = () => (name = `i-${++n}`);

    test("a node's next events build on its last commit: no load", async () => {
      fresh();
      await create(a);
      resetCounts();
      for (let i = 1; i <= 3; i++) assert.equal(await count(a), i);
      assert.deepEqual(a.counts, { loads: 0, conflicts: 0 });
    });

    test("another node's commit: the commit on the stale record is refused, and retried on a fresh load", async () => {
      fresh();
      await create(a);
      assert.equal(await count(b), 1);
      assert.equal(await count(a), 2);
      assert.deepEqual(await events(), ["xstate.init", "inc", "inc"]);
    });

    test("paused on another node: the event answers invalid-state and commits nothing", async () => {
      fresh();
      await create(a);
      await count(a);
      await b.engine.setInstanceStatus({ ...at(), status: "paused" });
      await assert.rejects(send(a, "inc"), { code: "invalid-state" });
      assert.deepEqual(await events(), ["xstate.init", "inc"]);
      await b.engine.setInstanceStatus({ ...at(), status: "running" });
      assert.equal(await count(a), 2);
    });

    test("paused on another node: a timer armed here is not delivered", async () => {
      fresh();
      await create(a);
      assert.equal((await send(a, "arm")).state, "armed");
      await b.engine.setInstanceStatus({ ...at(), status: "paused" });
      const failed = () =>
        [...a.logs, ...b.logs].some((message) => message.includes("timer delivery failed"));
      for (let i = 0; i < 100 && !failed(); i++) await sleep(50);
      assert.ok(failed(), "the timer's delivery was tried, and refused");
      assert.deepEqual(await events(), ["xstate.init", "arm"]);
    });

    test("pending services changed on another node are not written back", async () => {
      fresh();
      await create(a);
      // A service this node started and then cut off at the settle deadline: still pending.
      assert.equal((await send(a, "hang")).state, "hanging");
      // Another node takes it off the pending list without a transition (as its engine does
      // when a lost service's error event fails).
      const row = await b.store.loadInstance(at());
      assert.ok(row);
      assert.deepEqual(row.pendingServices, ["never"]);
      await b.store.setPendingServices(row.id, [], row);
      // The remembered record still lists it: its error event must not be delivered now.
      const state = await send(a, "inc");
      assert.equal(state.state, "hanging");
      assert.deepEqual(await events(), ["xstate.init", "hang", "inc"]);
      assert.deepEqual((await a.store.loadInstance(at()))?.pendingServices, []);
      assert.ok(
        !a.logs.some((message) => message.includes("dropping it")),
        "the stale error event was refused as stale, not taken for a failed one",
      );
    });

    test("deleted and created again on another node: the event goes to the new instance", async () => {
      fresh();
      await create(a);
      await count(a);
      await count(a);
      await b.engine.deleteInstance(at());
      await create(b);
      assert.equal(await count(a), 1);
      assert.deepEqual(await events(), ["xstate.init", "inc"]);
    });

    test("a refusal computed on a stale record is checked against the store", async () => {
      fresh();
      await create(a);
      // "boom" fails in idle (where a's record is) and does nothing where b leaves the instance.
      await hangOnB();
      const state = await send(a, "boom");
      assert.equal(state.state, "failed", "the lost service's error, then boom, unhandled");
    });

    // Events of a caller whose key was verified from memory carry the key their commit requires.
    let keys = 0;
    const signingKey = async (live: boolean) => {
      const id = `sbk_instancecache${++keys}`;
      await a.store.createKey({
        id,
        orgId: ORG,
        name: id,
        secret: `sbsec_${id}`,
        scopes: [],
        createdAt: Date.now(),
      });
      if (!live) await a.store.deleteKey(ORG, id);
      return id;
    };
    const sendSigned = (node: TestNode, event: string, requiresKeyId: string) =>
      node.engine.sendEvent({ ...at(), event, authContext: alice, requiresKeyId });

    test("an event whose key is gone sets off no lost service's error event", async () => {
      fresh();
      // Created and left hanging on b: to a, which never saw it, the service is lost.
      await create(b);
      await hangOnB();
      await assert.rejects(sendSigned(a, "inc", await signingKey(false)), {
        code: "token-unknown-key",
      });
      assert.deepEqual(await events(), ["xstate.init", "hang"]);
      // With a key that is there, the same event first delivers the lost service's error.
      assert.equal((await sendSigned(a, "inc", await signingKey(true))).state, "failed");
      assert.deepEqual(await events(), ["xstate.init", "hang", "xstate.error.actor.never", "inc"]);
    });

    test("a commit refused for its key does not make earlier refusals on a stale record stand", async () => {
      fresh();
      await create(a);
      await hangOnB();
      // On a's record (idle) "boom" fails without a commit; "inc" is stepped and refused for its
      // key, which says nothing about the record: "boom" must go again on the instance as it is.
      const gone = await signingKey(false);
      const [boom, signed] = await Promise.allSettled([
        send(a, "boom"),
        sendSigned(a, "inc", gone),
      ]);
      assert.equal(signed.status, "rejected");
      assert.equal((signed.reason as { code?: string }).code, "token-unknown-key");
      assert.equal(boom.status, "fulfilled", "boom does nothing where the instance really is");
      assert.deepEqual(await events(), ["xstate.init", "hang", "xstate.error.actor.never", "boom"]);
    });

    test("refusals after a commit refused for its key go again on the instance as it is", async () => {
      fresh();
      await create(b);
      await hangOnB();
      // a delivers the lost service's error: the instance is "failed", and a's record current.
      assert.equal((await sendSigned(a, "inc", await signingKey(true))).state, "failed");
      // "reset" is stepped (to idle) and refused for its key; "boom", stepped on idle, failed
      // there: on the instance as it is ("failed") it does nothing.
      const gone = await signingKey(false);
      const [reset, boom] = await Promise.allSettled([
        sendSigned(a, "reset", gone),
        send(a, "boom"),
      ]);
      assert.equal(reset.status, "rejected");
      assert.equal((reset.reason as { code?: string }).code, "token-unknown-key");
      assert.equal(boom.status, "fulfilled");
      assert.equal(boom.value.state, "failed");
      assert.deepEqual((await events()).slice(-2), ["inc", "boom"]);
    });

    test("a refused event keeps the record: the next event still skips the load", async () => {
      fresh();
      await create(a);
      await count(a);
      await assert.rejects(send(a, "forbidden"), { code: "rejected-by-machine-authorizer" });
      resetCounts();
      assert.equal(await count(a), 2);
      assert.deepEqual(a.counts, { loads: 0, conflicts: 0 });
    });

    test("a failed commit forgets the record: the next event loads the row", async () => {
      fresh();
      await create(a);
      await count(a);
      a.faults.lostAnswers = 1;
      await assert.rejects(send(a, "inc"), /connection broke/);
      resetCounts();
      // The commit was written after all: building on the record before it would conflict.
      assert.equal(await count(a), 3);
      assert.deepEqual(a.counts, { loads: 1, conflicts: 0 });
    });

    test("pausing, deleting and creating on this node replace the record", async () => {
      fresh();
      await create(a);
      await count(a);
      await a.engine.setInstanceStatus({ ...at(), status: "paused" });
      resetCounts();
      await assert.rejects(send(a, "inc"), { code: "invalid-state" });
      await a.engine.setInstanceStatus({ ...at(), status: "running" });
      assert.equal(await count(a), 2);
      await a.engine.deleteInstance(at());
      await assert.rejects(send(a, "inc"), { code: "not-found" });
      await create(a);
      assert.equal(await count(a), 1);
      assert.equal(a.counts.conflicts, 0, "no write was built on a record the node knew stale");
    });

    if (target.notices) {
      test("another node's change notice drops the record before the next event", async () => {
        fresh();
        await create(a);
        await count(a);
        const heard = new Promise<void>((resolve) => {
          const stop = a.updates.subscribe((update) => {
            if (update.kind === "changed" && update.key.instanceName === name) {
              stop();
              resolve();
            }
          });
        });
        await count(b);
        await heard;
        resetCounts();
        assert.equal(await count(a), 3);
        assert.deepEqual(a.counts, { loads: 1, conflicts: 0 });
      });
    }
  });
}
