// Contract, part 5: what one store object committed, a fresh store object on the same database
// reads back after the first was closed.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  T0,
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  timer,
  type ContractStore,
} from "./fixtures.js";

/** Closes `store` and opens a new store object on the same database. */
export type Reopen = (store: ContractStore) => Promise<ContractStore>;

export function durabilityContract(open: () => Promise<ContractStore>, reopen?: Reopen): void {
  const skip = reopen === undefined && "this storage does not outlive its store object";
  test("data survives closing the store and opening a new one", { skip }, async () => {
    assert.ok(reopen);
    const first = await open();
    let second: ContractStore | undefined;
    try {
      await seedMachine(first, "org_a");
      await first.createKey({
        id: "sbk_1",
        orgId: "org_a",
        name: "k",
        secret: "sbsec_1",
        scopes: ["s"],
        createdAt: T0,
      });
      await first.ensureSetting("server-secret", "s1");
      await first.createUser({ id: "usr_1", name: "Ada", createdAt: T0 });
      await first.setOrgMember("org_a", "usr_1", "write", T0);
      await first.createAdminSession({ id: "ses_1", userId: "usr_1", secret: "x", createdAt: T0 });
      await first.putCodeUpload({
        orgId: "org_a",
        machineName: "counter",
        id: "ver_next",
        code: "export default 2",
        createdAt: T0,
      });
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(first, key, { timersToArm: [timer("t", 100)] });
      // Not awaited: close must still write a commit it has accepted.
      const pending = first.commitTransition(eventCommit(key, id, 1));
      second = await reopen(first);
      assert.deepEqual(await pending, { instanceId: id, sequence: 2 });

      assert.equal((await second.getOrg("org_a"))?.name, "Org org_a");
      assert.equal((await second.getKey("sbk_1"))?.secret, "sbsec_1");
      assert.equal((await second.getMachine("org_a", "counter"))?.currentVersionId, "ver_org_a");
      assert.equal(await second.ensureSetting("server-secret", "s2"), "s1");
      assert.equal(await second.getOrgRole("org_a", "usr_1"), "write");
      assert.equal((await second.getAdminSession("ses_1"))?.userId, "usr_1");
      assert.equal(
        (await second.getCodeUpload("org_a", "counter", "ver_next"))?.code,
        "export default 2",
      );
      assert.equal((await second.loadInstance(key))?.sequence, 2);
      assert.equal((await second.listTransitions(key, { limit: 10 })).length, 2);
      assert.deepEqual(
        (await second.claimDueTimers(100, 10, 1000)).map((t) => [t.instanceId, t.key]),
        [[id, "t"]],
      );
    } finally {
      await (second ?? first).close();
    }
  });
}
