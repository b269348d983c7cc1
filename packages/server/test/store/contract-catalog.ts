// Contract, part 1: orgs, keys, machines and versions, and that each is seen only by its own org.
import assert from "node:assert/strict";
import { test } from "node:test";
import { T0, seedMachine, using, type ContractStore } from "./fixtures.js";

export function catalogContract(open: () => Promise<ContractStore>): void {
  test("orgs: created, read back, and unique", () =>
    using(open, async (store) => {
      await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
      assert.deepEqual(await store.getOrg("org_a"), { id: "org_a", name: "A", createdAt: T0 });
      assert.equal(await store.getOrg("org_b"), undefined);
      await assert.rejects(store.createOrg({ id: "org_a", name: "again", createdAt: T0 }), {
        code: "already-exists",
      });
      assert.equal((await store.getOrg("org_a"))?.name, "A");
    }));

  test("keys: read by id, deleted only by their own org", () =>
    using(open, async (store) => {
      await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
      await store.createOrg({ id: "org_b", name: "B", createdAt: T0 });
      const key = {
        id: "sbk_1",
        orgId: "org_a",
        name: "ci",
        secret: "sbsec_xyz",
        scopes: ["events.write", "state.read"],
        createdAt: T0,
      };
      await store.createKey(key);
      assert.deepEqual(await store.getKey("sbk_1"), key);
      assert.equal(await store.getKey("sbk_2"), undefined);
      await assert.rejects(store.createKey({ ...key, orgId: "org_b" }), { code: "already-exists" });
      await assert.rejects(store.createKey({ ...key, id: "sbk_2", orgId: "org_nope" }), {
        code: "not-found",
      });

      assert.equal(await store.deleteKey("org_b", "sbk_1"), false);
      assert.deepEqual(await store.getKey("sbk_1"), key);
      assert.equal(await store.deleteKey("org_a", "sbk_1"), true);
      assert.equal(await store.getKey("sbk_1"), undefined);
      assert.equal(await store.deleteKey("org_a", "sbk_1"), false);
    }));

  test("machines: unique per org, invisible to other orgs, need an existing org", () =>
    using(open, async (store) => {
      await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
      await store.createOrg({ id: "org_b", name: "B", createdAt: T0 });
      await store.createMachine({ orgId: "org_a", name: "m", createdAt: T0 });
      assert.deepEqual(await store.getMachine("org_a", "m"), {
        orgId: "org_a",
        name: "m",
        currentVersionId: undefined,
        indexes: [],
        createdAt: T0,
      });
      assert.equal(await store.getMachine("org_b", "m"), undefined);
      await assert.rejects(store.createMachine({ orgId: "org_a", name: "m", createdAt: T0 }), {
        code: "already-exists",
      });
      // The same name in another org is another machine.
      await store.createMachine({
        orgId: "org_b",
        name: "m",
        indexes: ["by-user", "by-day"],
        createdAt: T0 + 1,
      });
      assert.deepEqual(await store.getMachine("org_b", "m"), {
        orgId: "org_b",
        name: "m",
        currentVersionId: undefined,
        indexes: ["by-user", "by-day"],
        createdAt: T0 + 1,
      });
      assert.deepEqual((await store.getMachine("org_a", "m"))?.indexes, []);
      await assert.rejects(store.createMachine({ orgId: "org_x", name: "m", createdAt: T0 }), {
        code: "not-found",
      });
    }));

  test("versions: stored, made current on request, scoped by org and machine", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a", "m", "ver_1");
      await seedMachine(store, "org_b", "m", "ver_b");
      const v2 = {
        id: "ver_2",
        orgId: "org_a",
        machineName: "m",
        code: "export default 2",
        hash: "ab".repeat(32),
        clientInfo: "cli 1.0",
        indexSelectors: { byOwner: "$.owner", "by-tag": "$.tags[*]" },
        createdAt: T0 + 5,
      };
      await store.createMachineVersion(v2, false);
      assert.deepEqual(await store.getMachineVersion("org_a", "m", "ver_2"), v2);
      assert.equal((await store.getMachine("org_a", "m"))?.currentVersionId, "ver_1");
      assert.equal(
        (await store.getMachineVersion("org_a", "m", "ver_1"))?.clientInfo,
        undefined,
        "an absent clientInfo reads back as undefined",
      );
      assert.equal(
        (await store.getMachineVersion("org_a", "m", "ver_1"))?.indexSelectors,
        undefined,
        "absent indexSelectors read back as undefined",
      );

      await store.createMachineVersion({ ...v2, id: "ver_3" }, true);
      assert.equal((await store.getMachine("org_a", "m"))?.currentVersionId, "ver_3");
      // "if-none" is decided as the version is stored: a machine with a current version keeps it.
      await store.createMachineVersion({ ...v2, id: "ver_5" }, "if-none");
      assert.equal((await store.getMachine("org_a", "m"))?.currentVersionId, "ver_3");
      await store.createMachine({ orgId: "org_a", name: "bare", createdAt: T0 });
      await store.createMachineVersion({ ...v2, machineName: "bare", id: "ver_6" }, "if-none");
      assert.equal((await store.getMachine("org_a", "bare"))?.currentVersionId, "ver_6");
      assert.equal((await store.getMachine("org_b", "m"))?.currentVersionId, "ver_b");

      assert.equal(await store.getMachineVersion("org_b", "m", "ver_2"), undefined);
      assert.equal(await store.getMachineVersion("org_a", "other", "ver_2"), undefined);
      await assert.rejects(store.createMachineVersion(v2, true), { code: "already-exists" });
      assert.equal(
        (await store.getMachine("org_a", "m"))?.currentVersionId,
        "ver_3",
        "a failed create does not make anything current",
      );
      await assert.rejects(store.createMachineVersion({ ...v2, machineName: "nope" }, false), {
        code: "not-found",
      });
      // An org without machine "m" cannot add a version to it, whoever else has an "m".
      await store.createOrg({ id: "org_c", name: "C", createdAt: T0 });
      await assert.rejects(
        store.createMachineVersion({ ...v2, id: "ver_4", orgId: "org_c" }, false),
        { code: "not-found" },
      );
    }));
}
