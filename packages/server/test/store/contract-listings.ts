// Contract, part 7: what the API lists and deletes. Machines, versions and instances listed page by
// page; code uploads kept until their finalize; machines and instances deleted with everything
// that hangs off them; history read newest first. No method reaches another org's rows.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page, VersionPosition } from "../../src/store/store.js";
import {
  T0,
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  timer,
  using,
  versionRecord,
  type ContractStore,
} from "./fixtures.js";

function upload(orgId: string, machineName: string, id: string, createdAt = T0) {
  return { orgId, machineName, id, code: `export default "${orgId}/${id}"`, createdAt };
}

export function listingContract(open: () => Promise<ContractStore>): void {
  test("machines: listed by name, paged, with their current version and indexes", () =>
    using(open, async (store) => {
      await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
      const names = ["m3", "m1", "m5", "m2", "m4"];
      for (const [i, name] of names.entries()) {
        await store.createMachine({ orgId: "org_a", name, createdAt: T0 + i });
      }
      await store.createMachine({
        orgId: "org_a",
        name: "m6",
        indexes: ["by-owner"],
        createdAt: T0 + 9,
      });
      // m1: a current version and a newer one that is not current.
      await store.createMachineVersion(
        versionRecord("org_a", "m1", "ver_1", { clientInfo: "cli 1", createdAt: T0 + 10 }),
        true,
      );
      await store.createMachineVersion(
        versionRecord("org_a", "m1", "ver_2", { clientInfo: "cli 2", createdAt: T0 + 11 }),
        false,
      );
      // Another org's machines, one of the same name, never show up.
      await seedMachine(store, "org_b", "m1", "ver_b");
      await seedMachine(store, "org_b", "m0", "ver_b0");

      const all = await store.listMachines("org_a", { limit: 100 });
      assert.deepEqual(
        all.map((machine) => machine.name),
        ["m1", "m2", "m3", "m4", "m5", "m6"],
      );
      assert.deepEqual(all[0], {
        orgId: "org_a",
        name: "m1",
        currentVersionId: "ver_1",
        currentVersion: { id: "ver_1", clientInfo: "cli 1", createdAt: T0 + 10 },
        indexes: [],
        createdAt: T0 + 1,
      });
      assert.deepEqual(all[5], {
        orgId: "org_a",
        name: "m6",
        currentVersionId: undefined,
        currentVersion: undefined,
        indexes: ["by-owner"],
        createdAt: T0 + 9,
      });

      const ofPage = async (page: Page) =>
        (await store.listMachines("org_a", page)).map((machine) => machine.name);
      assert.deepEqual(await ofPage({ limit: 4 }), ["m1", "m2", "m3", "m4"]);
      assert.deepEqual(await ofPage({ after: "m4", limit: 4 }), ["m5", "m6"]);
      assert.deepEqual(await ofPage({ after: "m6", limit: 4 }), []);
      assert.deepEqual(await ofPage({ after: "m1", limit: 1 }), ["m2"]);
      assert.deepEqual(await ofPage({ limit: 0 }), []);

      // Making the newer version current shows in the listing.
      await store.createMachineVersion(
        versionRecord("org_a", "m1", "ver_3", { createdAt: T0 + 12 }),
        true,
      );
      const [m1] = await store.listMachines("org_a", { limit: 1 });
      assert.deepEqual(m1?.currentVersion, {
        id: "ver_3",
        clientInfo: undefined,
        createdAt: T0 + 12,
      });

      const ofB = await store.listMachines("org_b", { limit: 10 });
      assert.deepEqual(
        ofB.map((machine) => [machine.orgId, machine.name, machine.currentVersion?.id]),
        [
          ["org_b", "m0", "ver_b0"],
          ["org_b", "m1", "ver_b"],
        ],
      );
      assert.deepEqual(await store.listMachines("org_x", { limit: 10 }), []);
    }));

  test("versions: info without code, listed oldest first by (createdAt, id), paged", () =>
    using(open, async (store) => {
      await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
      await store.createMachine({ orgId: "org_a", name: "m", createdAt: T0 });
      await store.createMachine({ orgId: "org_a", name: "other", createdAt: T0 });
      // Created out of order, with ties on createdAt broken by id.
      const versions: [string, number][] = [
        ["ver_c", T0 + 2],
        ["ver_a", T0 + 3],
        ["ver_e", T0 + 1],
        ["ver_b", T0 + 2],
        ["ver_d", T0 + 2],
      ];
      for (const [id, createdAt] of versions) {
        await store.createMachineVersion(
          versionRecord("org_a", "m", id, { clientInfo: `info ${id}`, createdAt }),
          false,
        );
      }
      await store.createMachineVersion(versionRecord("org_a", "other", "ver_0"), false);
      await seedMachine(store, "org_b", "m", "ver_b");
      await store.createMachineVersion(
        versionRecord("org_b", "m", "ver_a", { createdAt: T0 + 3 }),
        false,
      );

      assert.deepEqual(await store.getMachineVersionInfo("org_a", "m", "ver_a"), {
        id: "ver_a",
        clientInfo: "info ver_a",
        createdAt: T0 + 3,
      });
      assert.deepEqual(await store.getMachineVersionInfo("org_b", "m", "ver_b"), {
        id: "ver_b",
        clientInfo: undefined,
        createdAt: T0,
      });
      assert.equal(await store.getMachineVersionInfo("org_b", "m", "ver_c"), undefined);
      assert.equal(await store.getMachineVersionInfo("org_a", "other", "ver_a"), undefined);

      const all = await store.listMachineVersions("org_a", "m", { limit: 100 });
      assert.deepEqual(
        all.map((version) => version.id),
        ["ver_e", "ver_b", "ver_c", "ver_d", "ver_a"],
      );
      assert.deepEqual(all[1], { id: "ver_b", clientInfo: "info ver_b", createdAt: T0 + 2 });

      const ofPage = async (page: Page<VersionPosition>) =>
        (await store.listMachineVersions("org_a", "m", page)).map((version) => version.id);
      assert.deepEqual(await ofPage({ limit: 2 }), ["ver_e", "ver_b"]);
      assert.deepEqual(await ofPage({ after: { createdAt: T0 + 2, id: "ver_b" }, limit: 2 }), [
        "ver_c",
        "ver_d",
      ]);
      assert.deepEqual(await ofPage({ after: { createdAt: T0 + 2, id: "ver_d" }, limit: 2 }), [
        "ver_a",
      ]);
      assert.deepEqual(await ofPage({ after: { createdAt: T0 + 3, id: "ver_a" }, limit: 2 }), []);
      // Strictly after: a position between two rows starts at the next one.
      assert.deepEqual(await ofPage({ after: { createdAt: T0 + 1, id: "ver_z" }, limit: 1 }), [
        "ver_b",
      ]);
      assert.deepEqual(await ofPage({ limit: 0 }), []);

      assert.deepEqual(
        (await store.listMachineVersions("org_b", "m", { limit: 10 })).map((v) => v.id),
        ["ver_b", "ver_a"],
      );
      assert.deepEqual(await store.listMachineVersions("org_a", "nope", { limit: 10 }), []);
      assert.deepEqual(await store.listMachineVersions("org_x", "m", { limit: 10 }), []);
    }));

  test("code uploads: kept until finalized, single use, scoped by org and machine", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a", "m", "ver_1");
      await seedMachine(store, "org_b", "m", "ver_b");
      const mine = upload("org_a", "m", "ver_2", T0 + 5);
      await store.putCodeUpload(mine);
      assert.deepEqual(await store.getCodeUpload("org_a", "m", "ver_2"), mine);
      assert.equal(await store.getCodeUpload("org_b", "m", "ver_2"), undefined);
      assert.equal(await store.getCodeUpload("org_a", "other", "ver_2"), undefined);
      assert.equal(await store.getCodeUpload("org_a", "m", "ver_3"), undefined);

      // Single use: a second upload under the same id is refused and replaces nothing.
      await assert.rejects(store.putCodeUpload({ ...mine, code: "replaced" }), {
        code: "already-exists",
      });
      assert.equal((await store.getCodeUpload("org_a", "m", "ver_2"))?.code, mine.code);
      // An existing version's id cannot be uploaded to.
      await assert.rejects(store.putCodeUpload(upload("org_a", "m", "ver_1")), {
        code: "already-exists",
      });
      assert.equal(await store.getCodeUpload("org_a", "m", "ver_1"), undefined);
      // Another org's machine of the same name has its own uploads.
      const theirs = upload("org_b", "m", "ver_2");
      await store.putCodeUpload(theirs);
      assert.deepEqual(await store.getCodeUpload("org_b", "m", "ver_2"), theirs);
      assert.equal((await store.getCodeUpload("org_a", "m", "ver_2"))?.code, mine.code);
      // No machine (in this org), no upload.
      await assert.rejects(store.putCodeUpload(upload("org_a", "nope", "ver_9")), {
        code: "not-found",
      });
      await store.createOrg({ id: "org_c", name: "C", createdAt: T0 });
      await assert.rejects(store.putCodeUpload(upload("org_c", "m", "ver_9")), {
        code: "not-found",
      });

      // The finalize: the version is created and its upload is gone, in one step.
      await store.createMachineVersion(
        versionRecord("org_a", "m", "ver_2", { code: mine.code }),
        true,
      );
      assert.equal(await store.getCodeUpload("org_a", "m", "ver_2"), undefined);
      assert.equal((await store.getMachineVersion("org_a", "m", "ver_2"))?.code, mine.code);
      assert.deepEqual(
        await store.getCodeUpload("org_b", "m", "ver_2"),
        theirs,
        "another org's upload of the same id stays",
      );
      // The id was used: uploading to it again is refused.
      await assert.rejects(store.putCodeUpload(mine), { code: "already-exists" });
      assert.equal(await store.getCodeUpload("org_a", "m", "ver_2"), undefined);
    }));

  test("code uploads: never finalized ones are purged by age", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a", "m", "ver_1");
      await seedMachine(store, "org_b", "m", "ver_b");
      await store.putCodeUpload(upload("org_a", "m", "ver_old", T0 + 1));
      await store.putCodeUpload(upload("org_b", "m", "ver_old", T0 + 2));
      await store.putCodeUpload(upload("org_a", "m", "ver_edge", T0 + 3));
      await store.putCodeUpload(upload("org_a", "m", "ver_new", T0 + 4));

      assert.equal(await store.purgeCodeUploads(T0 + 1), 0, "only strictly before");
      assert.equal(await store.purgeCodeUploads(T0 + 3), 2);
      assert.equal(await store.getCodeUpload("org_a", "m", "ver_old"), undefined);
      assert.equal(await store.getCodeUpload("org_b", "m", "ver_old"), undefined);
      assert.equal((await store.getCodeUpload("org_a", "m", "ver_edge"))?.createdAt, T0 + 3);
      assert.equal((await store.getCodeUpload("org_a", "m", "ver_new"))?.createdAt, T0 + 4);
      assert.equal(await store.purgeCodeUploads(T0 + 3), 0);
      // A purged upload never became a version: its id may be uploaded again.
      await store.putCodeUpload(upload("org_a", "m", "ver_old", T0 + 5));
      assert.equal((await store.getCodeUpload("org_a", "m", "ver_old"))?.createdAt, T0 + 5);
    }));

  test("deleteMachine: refused while instances exist, else takes versions and uploads along", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a", "m", "ver_1");
      await store.createMachineVersion(versionRecord("org_a", "m", "ver_2"), false);
      await store.putCodeUpload(upload("org_a", "m", "ver_3"));
      await seedMachine(store, "org_b", "m", "ver_1");
      await store.putCodeUpload(upload("org_b", "m", "ver_3"));
      const key = instanceKey("org_a", "i1", "m");
      await createInstance(store, key, { machineVersionId: "ver_1" });

      assert.equal(await store.deleteMachine("org_a", "m"), "has-instances");
      // Refused means nothing changed.
      assert.equal((await store.getMachine("org_a", "m"))?.currentVersionId, "ver_1");
      assert.equal((await store.getMachineVersion("org_a", "m", "ver_2"))?.id, "ver_2");
      assert.equal((await store.getCodeUpload("org_a", "m", "ver_3"))?.id, "ver_3");
      assert.equal((await store.loadInstance(key))?.sequence, 1);

      assert.equal(await store.deleteMachine("org_a", "nope"), "not-found");
      assert.equal(await store.deleteMachine("org_x", "m"), "not-found");

      assert.equal(await store.deleteInstance(key), true);
      assert.equal(await store.deleteMachine("org_a", "m"), "deleted");
      assert.equal(await store.getMachine("org_a", "m"), undefined);
      assert.equal(await store.getMachineVersion("org_a", "m", "ver_1"), undefined);
      assert.equal(await store.getMachineVersionInfo("org_a", "m", "ver_2"), undefined);
      assert.equal(await store.getCodeUpload("org_a", "m", "ver_3"), undefined);
      assert.deepEqual(await store.listMachines("org_a", { limit: 10 }), []);
      assert.equal(await store.deleteMachine("org_a", "m"), "not-found");

      // The other org's machine of the same name is untouched.
      assert.equal((await store.getMachine("org_b", "m"))?.currentVersionId, "ver_1");
      assert.equal((await store.getMachineVersion("org_b", "m", "ver_1"))?.id, "ver_1");
      assert.equal((await store.getCodeUpload("org_b", "m", "ver_3"))?.id, "ver_3");

      // The name is free again, and so are its version ids.
      await seedMachine(store, "org_a", "m", "ver_1");
      await store.putCodeUpload(upload("org_a", "m", "ver_3"));
      assert.deepEqual(
        (await store.listMachineVersions("org_a", "m", { limit: 10 })).map((v) => v.id),
        ["ver_1"],
      );
    }));

  test("instances: listed by name, paged, with their own version's info", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a", "m", "ver_1");
      await seedMachine(store, "org_a", "other", "ver_o");
      await seedMachine(store, "org_b", "m", "ver_b");
      const names = ["i3", "i1", "i5", "i2", "i4"];
      for (const [i, name] of names.entries()) {
        await createInstance(store, instanceKey("org_a", name, "m"), {
          machineVersionId: "ver_1",
          at: T0 + i,
        });
      }
      await store.createMachineVersion(
        versionRecord("org_a", "m", "ver_2", { clientInfo: "cli 2", createdAt: T0 + 50 }),
        true,
      );
      const i2 = instanceKey("org_a", "i2", "m");
      const i2Id = (await store.loadInstance(i2))?.id;
      assert.ok(i2Id !== undefined);
      await store.commitTransition(eventCommit(i2, i2Id, 1, { machineVersionId: "ver_2" }));
      await store.setInstanceStatus(instanceKey("org_a", "i4", "m"), "paused");
      await createInstance(store, instanceKey("org_a", "i0", "other"), {
        machineVersionId: "ver_o",
      });
      await createInstance(store, instanceKey("org_b", "i0", "m"), { machineVersionId: "ver_b" });

      const all = await store.listInstances("org_a", "m", { limit: 100 });
      assert.deepEqual(
        all.map((instance) => [instance.name, instance.status, instance.machineVersion.id]),
        [
          ["i1", "running", "ver_1"],
          ["i2", "running", "ver_2"],
          ["i3", "running", "ver_1"],
          ["i4", "paused", "ver_1"],
          ["i5", "running", "ver_1"],
        ],
      );
      assert.deepEqual(all[1], {
        name: "i2",
        status: "running",
        machineVersion: { id: "ver_2", clientInfo: "cli 2", createdAt: T0 + 50 },
        createdAt: T0 + 3,
      });
      assert.deepEqual(all[0]?.machineVersion, {
        id: "ver_1",
        clientInfo: undefined,
        createdAt: T0,
      });

      const ofPage = async (page: Page) =>
        (await store.listInstances("org_a", "m", page)).map((instance) => instance.name);
      assert.deepEqual(await ofPage({ limit: 2 }), ["i1", "i2"]);
      assert.deepEqual(await ofPage({ after: "i2", limit: 2 }), ["i3", "i4"]);
      assert.deepEqual(await ofPage({ after: "i4", limit: 2 }), ["i5"]);
      assert.deepEqual(await ofPage({ after: "i5", limit: 2 }), []);
      assert.deepEqual(await ofPage({ limit: 0 }), []);

      assert.deepEqual(
        (await store.listInstances("org_b", "m", { limit: 10 })).map((i) => i.name),
        ["i0"],
      );
      assert.deepEqual(
        (await store.listInstances("org_a", "other", { limit: 10 })).map((i) => i.name),
        ["i0"],
      );
      assert.deepEqual(await store.listInstances("org_b", "other", { limit: 10 }), []);
      assert.deepEqual(await store.listInstances("org_x", "m", { limit: 10 }), []);
    }));

  test("deleteInstance: removes the instance with its history and timers, in its org only", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      const key = instanceKey("org_a", "i1");
      const neighbour = instanceKey("org_a", "i2");
      const twin = instanceKey("org_b", "i1");
      const id = await createInstance(store, key, { timersToArm: [timer("t", 100)] });
      await store.commitTransition(eventCommit(key, id, 1, { timersToArm: [timer("u", 200)] }));
      await createInstance(store, neighbour, { timersToArm: [timer("t", 300)] });
      const twinId = await createInstance(store, twin, { timersToArm: [timer("t", 400)] });

      // Another org's key (of the same names) deletes nothing.
      assert.equal(await store.deleteInstance({ ...key, orgId: "org_x" }), false);
      assert.equal(await store.deleteInstance(instanceKey("org_a", "i1", "nope")), false);
      assert.equal((await store.loadInstance(key))?.id, id);

      assert.equal(await store.deleteInstance(key), true);
      assert.equal(await store.loadInstance(key), undefined);
      assert.deepEqual(await store.listTransitions(key, { limit: 10 }), []);
      assert.equal(await store.deleteInstance(key), false);
      // Its timers are gone; everyone else's remain.
      assert.equal(await store.nextTimerDue(), 300);
      const due = await store.claimDueTimers(1000, 10, 1000);
      assert.deepEqual(
        due.map((t) => [t.instance.orgId, t.instance.instanceName, t.key]),
        [
          ["org_a", "i2", "t"],
          ["org_b", "i1", "t"],
        ],
      );
      assert.equal((await store.loadInstance(twin))?.id, twinId);
      assert.equal((await store.listTransitions(twin, { limit: 10 })).length, 1);
      assert.equal((await store.listTransitions(neighbour, { limit: 10 })).length, 1);

      // A commit still aimed at the deleted instance fails rather than resurrecting it.
      await assert.rejects(store.commitTransition(eventCommit(key, id, 2)), { code: "conflict" });
      assert.equal(await store.loadInstance(key), undefined);
      // The name is free again: a new instance with a new id and a history of its own.
      const again = await createInstance(store, key);
      assert.notEqual(again, id);
      assert.deepEqual(
        (await store.listTransitions(key, { limit: 10 })).map((row) => row.sequence),
        [1],
      );
    }));

  test("listTransitions newestFirst counts down from the latest", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key);
      for (let sequence = 1; sequence < 5; sequence++) {
        await store.commitTransition(eventCommit(key, id, sequence));
      }
      await createInstance(store, instanceKey("org_b", "i1"));
      const sequences = async (page: { afterSequence?: number; limit: number }) =>
        (await store.listTransitions(key, { ...page, newestFirst: true })).map(
          (row) => row.sequence,
        );
      assert.deepEqual(await sequences({ limit: 100 }), [5, 4, 3, 2, 1]);
      assert.deepEqual(await sequences({ limit: 2 }), [5, 4]);
      assert.deepEqual(await sequences({ afterSequence: 4, limit: 2 }), [3, 2]);
      assert.deepEqual(await sequences({ afterSequence: 2, limit: 2 }), [1]);
      assert.deepEqual(await sequences({ afterSequence: 1, limit: 2 }), []);
      assert.deepEqual(await sequences({ limit: 0 }), []);
      const [latest] = await store.listTransitions(key, { limit: 1, newestFirst: true });
      assert.deepEqual(latest, {
        sequence: 5,
        event: '{"type":"inc","n":4}',
        state: '"busy"',
        createdAt: T0 + 4,
      });
      // false is the default order.
      assert.deepEqual(
        (await store.listTransitions(key, { limit: 2, newestFirst: false })).map((r) => r.sequence),
        [1, 2],
      );
      assert.deepEqual(
        await store.listTransitions(instanceKey("org_x", "i1"), { limit: 10, newestFirst: true }),
        [],
      );
      assert.deepEqual(
        (
          await store.listTransitions(instanceKey("org_b", "i1"), { limit: 10, newestFirst: true })
        ).map((row) => row.sequence),
        [1],
      );
    }));
}
