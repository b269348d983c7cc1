// Contract, part 9: service leases. Which node runs an instance's services, for as long as its
// lease lasts: taken and extended, ended by its node alone, seen by every other node, and gone
// once run out. Keyed by the instance's name, so a lease may precede the instance's first commit.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createInstance, instanceKey, seedMachine, using, type ContractStore } from "./fixtures.js";

export function serviceLeaseContract(open: () => Promise<ContractStore>): void {
  test("service leases: seen by other nodes until they run out, extended by their node", () =>
    using(open, async (store) => {
      const one = instanceKey("org_a", "i1");
      const two = instanceKey("org_a", "i2");
      await store.leaseServices("node-a", [one, two], 1000);
      assert.equal(await store.servicesLeasedElsewhere(one, "node-b", 999), true);
      assert.equal(await store.servicesLeasedElsewhere(two, "node-b", 999), true);
      assert.equal(await store.servicesLeasedElsewhere(one, "node-a", 999), false, "its own");
      assert.equal(await store.servicesLeasedElsewhere(one, "node-b", 1000), false, "run out");
      // Another org's or machine's instance of that name is another instance.
      assert.equal(
        await store.servicesLeasedElsewhere(instanceKey("org_b", "i1"), "node-b", 0),
        false,
      );
      assert.equal(
        await store.servicesLeasedElsewhere({ ...one, machineName: "other" }, "node-b", 0),
        false,
      );
      await store.leaseServices("node-a", [one], 5000);
      assert.equal(await store.servicesLeasedElsewhere(one, "node-b", 4999), true);
      assert.equal(await store.servicesLeasedElsewhere(two, "node-b", 4999), false);
      await store.leaseServices("node-a", [], 9000);
      // One instance named twice in a call is leased once.
      await store.leaseServices("node-a", [two, { ...two }], 7000);
      assert.equal(await store.servicesLeasedElsewhere(two, "node-b", 6999), true);
    }));

  test("instances with pending services are listed by id, running ones only, page by page", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      const a = await createInstance(store, instanceKey("org_a", "a"), {
        pendingServices: ["s1"],
      });
      await createInstance(store, instanceKey("org_a", "idle"));
      const paused = instanceKey("org_a", "paused");
      await createInstance(store, paused, { pendingServices: ["s2"] });
      await store.setInstanceStatus(paused, "paused");
      const b = await createInstance(store, instanceKey("org_b", "b"), {
        pendingServices: ["s3", "s4"],
      });
      assert.deepEqual(await store.listInstancesWithPendingServices(0, 10), [
        { id: a, ...instanceKey("org_a", "a") },
        { id: b, ...instanceKey("org_b", "b") },
      ]);
      assert.deepEqual(await store.listInstancesWithPendingServices(0, 1), [
        { id: a, ...instanceKey("org_a", "a") },
      ]);
      assert.deepEqual(await store.listInstancesWithPendingServices(a, 10), [
        { id: b, ...instanceKey("org_b", "b") },
      ]);
    }));

  test("service leases: ended by their own node only; run-out leases removed on the way", () =>
    using(open, async (store) => {
      const key = instanceKey("org_a", "i1");
      await store.leaseServices("node-a", [key], 1000);
      await store.leaseServices("node-b", [key], 2000);
      await store.endServiceLeases("node-c", [key], 0);
      assert.equal(await store.servicesLeasedElsewhere(key, "node-c", 500), true);
      await store.endServiceLeases("node-a", [key], 0);
      assert.equal(await store.servicesLeasedElsewhere(key, "node-b", 500), false, "a's is gone");
      assert.equal(await store.servicesLeasedElsewhere(key, "node-a", 500), true, "b's stays");
      // A node that died never ends its lease: another's cleanup removes it once run out (asked
      // at time 0, a lease to 2000 would still count: it is gone, not just over).
      await store.endServiceLeases("node-c", [], 2000);
      assert.equal(await store.servicesLeasedElsewhere(key, "node-a", 0), true, "not run out yet");
      await store.endServiceLeases("node-c", [], 2001);
      assert.equal(await store.servicesLeasedElsewhere(key, "node-a", 0), false);
    }));
}
