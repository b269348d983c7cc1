// Contract, part 2: committing transitions (create, events, the optimistic sequence check),
// reading instances and their history, and that another org's id never reaches them.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { TransitionCommit } from "../../src/store/store.js";
import {
  T0,
  createCommit,
  createEventsKey,
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  using,
  type ContractStore,
} from "./fixtures.js";

export function commitContract(open: () => Promise<ContractStore>): void {
  test("create: inserts the instance at sequence 1 with its first history row", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const result = await store.commitTransition(
        createCommit(key, { pendingServices: ["svc-1"], at: T0 + 7 }),
      );
      assert.equal(result.sequence, 1);
      assert.deepEqual(await store.loadInstance(key), {
        ...key,
        id: result.instanceId,
        machineVersionId: "ver_org_a",
        snapshot: JSON.stringify({ value: "idle", n: 0 }),
        status: "running",
        sequence: 1,
        pendingServices: ["svc-1"],
        createdAt: T0 + 7,
        updatedAt: T0 + 7,
      });
      assert.deepEqual(await store.listTransitions(key, { limit: 10 }), [
        { sequence: 1, event: '{"type":"xstate.init"}', state: '"idle"', createdAt: T0 + 7 },
      ]);
    }));

  test("create of an existing name fails with already-exists and changes nothing", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      await assert.rejects(
        store.commitTransition(createCommit(key, { snapshot: '"second"', at: T0 + 1 })),
        { code: "already-exists" },
      );
      const loaded = await store.loadInstance(key);
      assert.equal(loaded?.id, id);
      assert.equal(loaded?.snapshot, JSON.stringify({ value: "idle", n: 0 }));
      assert.equal((await store.listTransitions(key, { limit: 10 })).length, 1);
    }));

  test("create needs the machine and the version to exist in the instance's org", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      // org_b has a machine "counter", but ver_org_a is org_a's.
      const keyB = instanceKey("org_b", "i1");
      await assert.rejects(
        store.commitTransition(createCommit(keyB, { machineVersionId: "ver_org_a" })),
        { code: "not-found" },
      );
      const unknownMachine = instanceKey("org_a", "i1", "nope");
      await assert.rejects(store.commitTransition(createCommit(unknownMachine)), {
        code: "not-found",
      });
      assert.equal(await store.loadInstance(keyB), undefined);
      assert.equal(await store.loadInstance(unknownMachine), undefined);
    }));

  test("event: writes sequence + 1, the new snapshot and version, and a history row", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await store.createMachineVersion(
        {
          id: "ver_2",
          orgId: "org_a",
          machineName: "counter",
          code: "export default 2",
          hash: "cd".repeat(32),
          clientInfo: undefined,
          indexSelectors: undefined,
          createdAt: T0,
        },
        true,
      );
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      const result = await store.commitTransition(
        eventCommit(key, id, 1, { machineVersionId: "ver_2", pendingServices: ["a", "b"] }),
      );
      assert.deepEqual(result, { instanceId: id, sequence: 2 });
      const loaded = await store.loadInstance(key);
      assert.equal(loaded?.sequence, 2);
      assert.equal(loaded?.snapshot, JSON.stringify({ value: "busy", n: 1 }));
      assert.equal(loaded?.machineVersionId, "ver_2");
      assert.deepEqual(loaded?.pendingServices, ["a", "b"]);
      assert.equal(loaded?.createdAt, T0);
      assert.equal(loaded?.updatedAt, T0 + 1);
      const history = await store.listTransitions(key, { limit: 10 });
      assert.deepEqual(
        history.map((row) => [row.sequence, row.event]),
        [
          [1, '{"type":"xstate.init"}'],
          [2, '{"type":"inc","n":1}'],
        ],
      );
      await assert.rejects(
        store.commitTransition(
          eventCommit(key, id, 2, {
            machineVersionId: "ver_nope",
            expectedPendingServices: ["a", "b"],
          }),
        ),
        { code: "not-found" },
      );
      assert.equal((await store.loadInstance(key))?.sequence, 2);
    }));

  test("event with a stale expected sequence fails with conflict and changes nothing", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      await store.commitTransition(eventCommit(key, id, 1));
      const before = await store.loadInstance(key);
      await assert.rejects(store.commitTransition(eventCommit(key, id, 1, { snapshot: '"x"' })), {
        code: "conflict",
      });
      await assert.rejects(store.commitTransition(eventCommit(key, id, 5)), { code: "conflict" });
      assert.deepEqual(await store.loadInstance(key), before);
      assert.equal((await store.listTransitions(key, { limit: 10 })).length, 2);
    }));

  test("a commit requiring a key lands only while that key of the instance's org exists", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      await createEventsKey(store, "org_a", "sbk_live");
      await createEventsKey(store, "org_b", "sbk_elsewhere");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      await store.commitTransition(eventCommit(key, id, 1, { requiresKeyId: "sbk_live" }));

      const before = await store.loadInstance(key);
      assert.equal(before?.sequence, 2);
      assert.equal(await store.deleteKey("org_a", "sbk_live"), true);
      // The deleted key, another org's key and a key that never was: refused, nothing written.
      for (const requiresKeyId of ["sbk_live", "sbk_elsewhere", "sbk_never"]) {
        await assert.rejects(store.commitTransition(eventCommit(key, id, 2, { requiresKeyId })), {
          code: "token-unknown-key",
        });
      }
      // A create is refused the same way, and leaves no instance behind.
      const other = instanceKey("org_a", "i2");
      await assert.rejects(
        store.commitTransition(createCommit(other, { requiresKeyId: "sbk_live" })),
        { code: "token-unknown-key" },
      );
      assert.equal(await store.loadInstance(other), undefined);
      assert.deepEqual(await store.loadInstance(key), before);
      assert.equal((await store.listTransitions(key, { limit: 10 })).length, 2);
      // The next commit of the instance, without the requirement, still lands where it should.
      await store.commitTransition(eventCommit(key, id, 2));
      assert.equal((await store.loadInstance(key))?.sequence, 3);
    }));

  test("org scoping: another org's key or id neither reads nor writes an instance", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      const keyA = instanceKey("org_a", "shared-name");
      const keyB = instanceKey("org_b", "shared-name");
      const idA = await createInstance(store, keyA);
      assert.equal(await store.loadInstance(keyB), undefined);
      assert.deepEqual(await store.listTransitions(keyB, { limit: 10 }), []);
      assert.equal(await store.setInstanceStatus(keyB, "paused"), false);
      // Org B naming org A's instance id under its own key must not touch org A's row.
      await assert.rejects(store.commitTransition(eventCommit(keyB, idA, 1)), {
        code: "conflict",
      });
      const loadedA = await store.loadInstance(keyA);
      assert.equal(loadedA?.status, "running");
      assert.equal(loadedA?.sequence, 1);
      // The same instance name in org B is a separate instance.
      const idB = await createInstance(store, keyB);
      assert.notEqual(idB, idA);
      assert.equal((await store.loadInstance(keyB))?.id, idB);
    }));

  test("status and pending services change without a transition", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key, { pendingServices: ["svc"] });
      assert.equal(await store.setInstanceStatus(key, "paused"), true);
      assert.equal((await store.loadInstance(key))?.status, "paused");
      assert.equal(await store.setInstanceStatus(key, "running"), true);
      assert.equal((await store.loadInstance(key))?.status, "running");
      assert.equal(await store.setInstanceStatus(instanceKey("org_a", "nope"), "paused"), false);

      await store.setPendingServices(id, [], {
        sequence: 1,
        pendingServices: ["svc"],
        status: "running",
      });
      const loaded = await store.loadInstance(key);
      assert.deepEqual(loaded?.pendingServices, []);
      assert.equal(loaded?.sequence, 1, "no transition was recorded");
      await assert.rejects(
        store.setPendingServices(id + 1000, ["x"], {
          sequence: 1,
          pendingServices: [],
          status: "running",
        }),
        { code: "not-found" },
      );
    }));

  test("an event commit lands only on the row as it was read: running, same id, sequence and pending services", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key, { pendingServices: ["svc"] });
      const asRead = { expectedPendingServices: ["svc"], pendingServices: ["svc"] };
      const refused = async (commit: TransitionCommit, why: string) => {
        const before = await store.loadInstance(key);
        await assert.rejects(store.commitTransition(commit), { code: "conflict" }, why);
        assert.deepEqual(await store.loadInstance(key), before, `${why}: nothing changed`);
      };

      // Paused (by another node, say) after the record was read: a paused instance takes no
      // transition, so a pause is never overwritten by a commit computed before it.
      await store.setInstanceStatus(key, "paused");
      await refused(eventCommit(key, id, 1, asRead), "paused since");
      await store.setInstanceStatus(key, "running");
      // Its pending services changed without a transition since.
      await store.setPendingServices(id, [], {
        sequence: 1,
        pendingServices: ["svc"],
        status: "running",
      });
      await refused(eventCommit(key, id, 1, asRead), "pending services changed since");
      const landed = await store.commitTransition(eventCommit(key, id, 1));
      assert.equal(landed.sequence, 2);

      // Deleted and created again under the same name: a new id, at sequence 1 again.
      await store.deleteInstance(key);
      const again = await createInstance(store, key);
      assert.notEqual(again, id);
      await refused(eventCommit(key, id, 1), "created again since");
      await refused(eventCommit(key, id, 2), "created again since");
      assert.equal((await store.listTransitions(key, { limit: 10 })).length, 1);
    }));

  test("setPendingServices lands only on the row at the sequence, pending services and status expected", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key, { pendingServices: ["a", "b"] });
      const asRead = { sequence: 1, pendingServices: ["a", "b"], status: "running" as const };
      // Paused (by another node, say) since: the drop was computed for a running instance.
      await store.setInstanceStatus(key, "paused");
      await assert.rejects(store.setPendingServices(id, ["b"], asRead), { code: "conflict" });
      await store.setPendingServices(id, ["b"], { ...asRead, status: "paused" });
      await store.setInstanceStatus(key, "running");
      await assert.rejects(
        store.setPendingServices(id, ["a"], asRead),
        { code: "conflict" },
        "its pending services changed since",
      );
      await store.commitTransition(
        eventCommit(key, id, 1, { expectedPendingServices: ["b"], pendingServices: ["b", "c"] }),
      );
      await assert.rejects(
        store.setPendingServices(id, [], {
          sequence: 1,
          pendingServices: ["b"],
          status: "running",
        }),
        { code: "conflict" },
        "a transition was committed since",
      );
      const loaded = await store.loadInstance(key);
      assert.deepEqual(loaded?.pendingServices, ["b", "c"]);
      assert.equal(loaded?.sequence, 2);
    }));

  test("listTransitions pages by sequence, in order", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const other = instanceKey("org_a", "i2");
      const id = await createInstance(store, key);
      await createInstance(store, other);
      for (let sequence = 1; sequence < 5; sequence++) {
        await store.commitTransition(eventCommit(key, id, sequence));
      }
      const sequences = async (page: { afterSequence?: number; limit: number }) =>
        (await store.listTransitions(key, page)).map((row) => row.sequence);
      assert.deepEqual(await sequences({ limit: 100 }), [1, 2, 3, 4, 5]);
      assert.deepEqual(await sequences({ limit: 2 }), [1, 2]);
      assert.deepEqual(await sequences({ afterSequence: 2, limit: 2 }), [3, 4]);
      assert.deepEqual(await sequences({ afterSequence: 4, limit: 10 }), [5]);
      assert.deepEqual(await sequences({ afterSequence: 5, limit: 10 }), []);
      assert.deepEqual(await sequences({ limit: 0 }), []);
      const [row] = await store.listTransitions(key, { afterSequence: 3, limit: 1 });
      assert.deepEqual(row, {
        sequence: 4,
        event: '{"type":"inc","n":3}',
        state: '"busy"',
        createdAt: T0 + 3,
      });
    }));

  test("listTransitions stops a page after the row that reaches its byte budget", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      // Sizes that differ as UTF-8 bytes and as characters: the budget counts bytes.
      const events = ["é".repeat(500), "x".repeat(1000), "y", "z".repeat(300)];
      for (const [index, pad] of events.entries()) {
        const event = JSON.stringify({ type: "inc", pad });
        await store.commitTransition(
          eventCommit(key, id, index + 1, { transition: { event, state: '"busy"' } }),
        );
      }
      for (const newestFirst of [false, true]) {
        const all = await store.listTransitions(key, { limit: 100, newestFirst });
        assert.equal(all.length, 5);
        const sizes = all.map((row) => Buffer.byteLength(row.event) + Buffer.byteLength(row.state));
        // What the budget keeps: rows while those before them hold fewer bytes than it.
        const expected = (maxBytes: number) => {
          let before = 0;
          return all.filter((_, index) => {
            const kept = before < maxBytes;
            before += sizes[index]!;
            return kept;
          });
        };
        const upTo = (count: number) => sizes.slice(0, count).reduce((a, b) => a + b, 0);
        for (const maxBytes of [1, upTo(1), upTo(1) + 1, upTo(2), upTo(2) + 1, upTo(4), 1e9]) {
          assert.deepEqual(
            await store.listTransitions(key, { limit: 100, newestFirst, maxBytes }),
            expected(maxBytes),
            `newestFirst ${newestFirst}, maxBytes ${maxBytes}`,
          );
        }
        assert.equal(
          (await store.listTransitions(key, { limit: 100, newestFirst, maxBytes: upTo(2) })).length,
          2,
          "the row after a page that holds the budget exactly is left for the next",
        );
        // The row limit still holds, and paging goes on where the budget stopped.
        assert.equal(
          (await store.listTransitions(key, { limit: 1, newestFirst, maxBytes: 1e9 })).length,
          1,
        );
        const afterSequence = all[1]!.sequence;
        assert.deepEqual(
          await store.listTransitions(key, { afterSequence, limit: 100, newestFirst, maxBytes: 1 }),
          [all[2]],
        );
      }
      await assert.rejects(store.listTransitions(key, { limit: 10, maxBytes: 0 }), TypeError);
    }));
}
