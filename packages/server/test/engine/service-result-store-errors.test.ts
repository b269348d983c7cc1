// A service's result is in hand when its commit fails on a store error (a cut connection, a
// store that fails once): it is committed on a later try, in its place among the instance's
// events, rather than dropped for the machine to get the service's error event instead. A store
// that keeps failing still ends that way; a try whose answer was lost after it landed is not
// written again; an instance deleted meanwhile stays deleted. On SQLite and on PostgreSQL.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BackstateError } from "../../src/errors.js";
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { ORG, startHarness, type Harness, type HarnessOptions } from "../support/engine-harness.js";
import { TestSchemas, testDatabaseUrl } from "../store/postgres-support.js";

const alice = { sub: "alice" };
/** Short waits between the tries, so a store that keeps failing costs the test little. */
const RETRY_DELAYS_MS = [5, 10, 20];

/** What a commit of the instance under test runs into, by the event's type. */
type Fault = (commit: TransitionCommit, store: Store) => Promise<"pass" | "fail" | "lose-answer">;

const targets: Array<{ name: string; place: () => Partial<HarnessOptions> }> = [
  { name: "SQLite", place: () => ({}) },
];
const url = testDatabaseUrl("service results after store errors (postgres)");
if (url !== undefined) {
  const schemas = new TestSchemas(url);
  targets.push({
    name: "PostgreSQL",
    place: () => ({ databaseUrl: url, postgres: { schema: schemas.fresh(), poolSize: 4 } }),
  });
}

function storeError(): BackstateError {
  return new BackstateError("store-error", "storage failed: connection cut");
}

/** The store, with `fault` deciding each transition commit's fate (and `leaseFault` each lease's). */
function faulty(fault: Fault, leaseFault?: () => "pass" | "fail"): (store: Store) => Store {
  return (store) =>
    new Proxy(store, {
      get(target, property, receiver) {
        if (property === "leaseServices" && leaseFault !== undefined) {
          return (...args: Parameters<Store["leaseServices"]>) =>
            leaseFault() === "fail" ? Promise.reject(storeError()) : target.leaseServices(...args);
        }
        if (property === "commitTransition") {
          return async (commit: TransitionCommit) => {
            const fate = await fault(commit, target);
            if (fate === "fail") throw storeError();
            const result = await target.commitTransition(commit);
            // Written, but its answer lost: the store cannot tell whether it landed.
            if (fate === "lose-answer") throw storeError();
            return result;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? (value.bind(target) as unknown) : value;
      },
    });
}

function typeOf(commit: TransitionCommit): string {
  return (JSON.parse(commit.transition.event) as { type: string }).type;
}

for (const target of targets) {
  describe(`service results after store errors (${target.name})`, () => {
    let h: Harness | undefined;
    after(() => h?.dispose());

    async function start(
      fault: Fault,
      options: Partial<HarnessOptions> = {},
      leaseFault?: () => "pass" | "fail",
    ): Promise<Harness> {
      await h?.dispose();
      h = await startHarness({
        ...target.place(),
        ...options,
        serviceResultRetryDelaysMs: RETRY_DELAYS_MS,
        wrapStore: faulty(fault, leaseFault),
      });
      return h;
    }

    const at = (instanceName: string) => ({ orgId: ORG, machineName: "workflow", instanceName });

    async function history(node: Harness, instanceName: string, machineName = "workflow") {
      const rows = await node.store.listTransitions(
        { orgId: ORG, machineName, instanceName },
        { limit: 1000 },
      );
      return rows.map((row) => (JSON.parse(row.event) as { type: string }).type);
    }

    for (const failures of [1, RETRY_DELAYS_MS.length]) {
      test(`a result whose commit fails ${failures} time(s) with a store error is committed, once, before later events`, async () => {
        let left = failures;
        let later: Promise<unknown> | undefined;
        const node = await start((commit) => {
          if (typeOf(commit) !== "xstate.done.actor.double" || left === 0) {
            return Promise.resolve("pass");
          }
          left--;
          // An event for the instance arrives while its result waits for the next try.
          later ??= node.engine.sendEvent({ ...at("once"), event: "inc", authContext: alice });
          return Promise.resolve("fail");
        });
        await node.deploy("workflow-v5.js", "v5-import", "workflow");
        await node.engine.createInstance({
          ...at("once"),
          authContext: alice,
          context: { public: { count: 1, note: "n" } },
        });
        const state = await node.engine.sendEvent({
          ...at("once"),
          event: "start",
          authContext: alice,
        });
        assert.equal(left, 0, "the result's commit failed as often as the test asked");
        assert.ok(later, "an event came while the result waited");
        await later;
        // The result, 1 * 2 + 2, and then the event that came after it.
        assert.equal(state.state, "idle");
        const settled = await node.engine.readInstance({ ...at("once"), authContext: alice });
        assert.equal(settled.state, "idle");
        assert.equal((settled.publicContext as { count: number }).count, 5);
        assert.deepEqual(await history(node, "once"), [
          "xstate.init",
          "start",
          "xstate.done.actor.double",
          "inc",
        ]);
      });
    }

    test("other instances go on while a result waits for its next try", async () => {
      // The result's second try waits for another instance's event to be answered: were the
      // node's other instances held up meanwhile, neither would ever finish.
      let first: TransitionCommit | undefined;
      let other: Promise<unknown> | undefined;
      const node = await start(async (commit) => {
        if (commit.instance.instanceName !== "waiting") return "pass";
        if (typeOf(commit) !== "xstate.done.actor.double") return "pass";
        if (first === undefined) {
          first = commit;
          other = node.engine.sendEvent({ ...at("other"), event: "inc", authContext: alice });
          return "fail";
        }
        await other;
        return "pass";
      });
      await node.deploy("workflow-v5.js", "v5-import", "workflow");
      await node.engine.createInstance({ ...at("other"), authContext: alice });
      await node.engine.createInstance({
        ...at("waiting"),
        authContext: alice,
        context: { public: { count: 1, note: "n" } },
      });
      const state = await node.engine.sendEvent({
        ...at("waiting"),
        event: "start",
        authContext: alice,
      });
      assert.ok(first, "the result's first try failed");
      assert.equal(state.state, "idle");
      assert.equal((state.publicContext as { count: number }).count, 4);
      assert.deepEqual(await history(node, "other"), ["xstate.init", "inc"]);
    });

    test("a result whose step starts a service, its lease failing once with a store error, is committed", async () => {
      // Leases: one for "start" (it starts the first service), one for the first's result.
      let leases = 0;
      const node = await start(
        () => Promise.resolve("pass"),
        {},
        () => (++leases === 2 ? "fail" : "pass"),
      );
      await node.deploy("chain-v5.js", "v5-import", "chain");
      const key = { orgId: ORG, machineName: "chain", instanceName: "leased" };
      await node.engine.createInstance({ ...key, authContext: alice });
      const state = await node.engine.sendEvent({ ...key, event: "start", authContext: alice });
      assert.ok(leases >= 3, "the failed lease was taken again");
      assert.equal(state.state, "done");
      assert.deepEqual(state.publicContext, { steps: ["first", "second"] });
      assert.deepEqual(await history(node, "leased", "chain"), [
        "xstate.init",
        "start",
        "xstate.done.actor.first",
        "xstate.done.actor.second",
      ]);
    });

    test("a store that keeps failing the result's commit: the error event comes before the next event", async () => {
      let tries = 0;
      const node = await start((commit) => {
        if (typeOf(commit) !== "xstate.done.actor.double") return Promise.resolve("pass");
        tries++;
        return Promise.resolve("fail");
      });
      await node.deploy("workflow-v5.js", "v5-import", "workflow");
      await node.engine.createInstance({
        ...at("down"),
        authContext: alice,
        context: { public: { count: 1, note: "n" } },
      });
      const state = await node.engine.sendEvent({
        ...at("down"),
        event: "start",
        authContext: alice,
      });
      assert.equal(state.state, "working");
      assert.equal(tries, 1 + RETRY_DELAYS_MS.length, "tried a bounded number of times");
      const next = await node.engine.sendEvent({ ...at("down"), event: "inc", authContext: alice });
      assert.equal(next.state, "failed");
      assert.deepEqual(await history(node, "down"), [
        "xstate.init",
        "start",
        "xstate.error.actor.double",
        "inc",
      ]);
    });

    test("a result whose commit landed but whose answer was lost is written once", async () => {
      let lost = false;
      const node = await start((commit) => {
        if (typeOf(commit) !== "xstate.done.actor.double" || lost) return Promise.resolve("pass");
        lost = true;
        return Promise.resolve("lose-answer");
      });
      await node.deploy("workflow-v5.js", "v5-import", "workflow");
      await node.engine.createInstance({
        ...at("landed"),
        authContext: alice,
        context: { public: { count: 1, note: "n" } },
      });
      const state = await node.engine.sendEvent({
        ...at("landed"),
        event: "start",
        authContext: alice,
      });
      assert.ok(lost);
      assert.equal(state.state, "idle");
      assert.equal((state.publicContext as { count: number }).count, 4);
      const next = await node.engine.sendEvent({
        ...at("landed"),
        event: "inc",
        authContext: alice,
      });
      assert.equal((next.publicContext as { count: number }).count, 5);
      assert.deepEqual(await history(node, "landed"), [
        "xstate.init",
        "start",
        "xstate.done.actor.double",
        "inc",
      ]);
    });

    // A running service's events (here 500 of a callback's) leave it running and pending: only
    // the sequence check keeps one from being written twice.
    for (const then of ["a try that commits", "tries that keep failing"]) {
      test(`an event of a running service whose commit landed but whose answer was lost, then ${then}, is written once`, async () => {
        let lost: TransitionCommit | undefined;
        const node = await start(
          (commit) => {
            if (typeOf(commit) !== "inc") return Promise.resolve("pass");
            if (lost === undefined) {
              lost = commit;
              return Promise.resolve("lose-answer");
            }
            // The engine tries the very same commit again.
            if (commit === lost && then === "tries that keep failing") {
              return Promise.resolve("fail");
            }
            return Promise.resolve("pass");
          },
          { serviceBacklog: { maxEvents: 1000, maxChars: 16 * 1024 * 1024 } },
        );
        await node.deploy("greedy-v5.js", "v5-import", "greedy");
        const key = { orgId: ORG, machineName: "greedy", instanceName: "flood" };
        await node.engine.createInstance({ ...key, authContext: alice });
        // The callback never ends, so this never settles (the clock is the test's).
        node.engine.sendEvent({ ...key, event: "flood", authContext: alice }).catch(() => {});
        // Until all 500 are in, and then a while longer: an event written twice would show then.
        let count = 0;
        for (let waited = 0, still = 0; still < 25 && count <= 500 && waited < 60_000;) {
          await sleep(20);
          waited += 20;
          const stored = await node.store.loadInstance(key);
          const now = stored
            ? ((JSON.parse(stored.snapshot) as Snapshot).machine.context.count ?? 0)
            : 0;
          still = now === count && now >= 500 ? still + 1 : 0;
          count = now;
        }
        await node.engine.timersIdle();
        const incs = (await history(node, "flood", "greedy")).filter((type) => type === "inc");
        assert.ok(lost, "an inc's answer was lost");
        assert.equal(incs.length, 500);
        const stored = await node.store.loadInstance(key);
        assert.equal((JSON.parse(stored!.snapshot) as Snapshot).machine.context.count, 500);
      });
    }

    test("an instance paused while its result's commit failed takes no result; the error event follows the resume", async () => {
      let tries = 0;
      const node = await start(async (commit, store) => {
        if (typeOf(commit) !== "xstate.done.actor.double") return "pass";
        if (tries++ > 0) return "pass";
        // As another node would (this node's own pause waits for the instance's mailbox).
        await store.setInstanceStatus(commit.instance, "paused");
        return "fail";
      });
      await node.deploy("workflow-v5.js", "v5-import", "workflow");
      await node.engine.createInstance({
        ...at("paused"),
        authContext: alice,
        context: { public: { count: 1, note: "n" } },
      });
      const state = await node.engine.sendEvent({
        ...at("paused"),
        event: "start",
        authContext: alice,
      });
      assert.equal(state.state, "working");
      // Its second try was refused by the store (the instance is paused): not tried on.
      assert.equal(tries, 2);
      assert.equal((await node.store.loadInstance(at("paused")))?.status, "paused");
      await node.engine.setInstanceStatus({ ...at("paused"), status: "running" });
      const next = await node.engine.sendEvent({
        ...at("paused"),
        event: "inc",
        authContext: alice,
      });
      assert.equal(next.state, "failed");
      assert.deepEqual(await history(node, "paused"), [
        "xstate.init",
        "start",
        "xstate.error.actor.double",
        "inc",
      ]);
    });

    test("an instance deleted while its result's commit failed stays deleted", async () => {
      let deleted = false;
      const node = await start(async (commit, store) => {
        if (typeOf(commit) !== "xstate.done.actor.double" || deleted) return "pass";
        deleted = true;
        // As another node would (this node's own delete waits for the instance's mailbox).
        await store.deleteInstance(commit.instance);
        return "fail";
      });
      await node.deploy("workflow-v5.js", "v5-import", "workflow");
      await node.engine.createInstance({
        ...at("gone"),
        authContext: alice,
        context: { public: { count: 1, note: "n" } },
      });
      await node.engine.sendEvent({ ...at("gone"), event: "start", authContext: alice }).then(
        () => assert.fail("answered with a state of a deleted instance"),
        (err: unknown) => assert.equal((err as BackstateError).code, "not-found"),
      );
      assert.ok(deleted);
      await node.engine.timersIdle();
      assert.equal(await node.store.loadInstance(at("gone")), undefined);
      // A new instance of the same name starts afresh: nothing of the old one's result lands on it.
      await node.engine.createInstance({ ...at("gone"), authContext: alice });
      await node.engine.timersIdle();
      assert.deepEqual(await history(node, "gone"), ["xstate.init"]);
    });
  });
}

type Snapshot = { machine: { context: { count?: number } } };
