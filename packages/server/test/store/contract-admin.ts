// Contract, part 6: what administration keeps. Server settings, users, org membership, admin
// sessions, and the listing of an org's keys, each seen only by its own org or user.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KeyRecord, OrgMembership, OrgRole, Page } from "../../src/store/store.js";
import { T0, using, type ContractStore } from "./fixtures.js";

async function seedOrgs(store: ContractStore, ...ids: string[]): Promise<void> {
  for (const [i, id] of ids.entries()) {
    await store.createOrg({ id, name: `Org ${id}`, createdAt: T0 + i });
  }
}

function key(orgId: string, id: string, extra: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id,
    orgId,
    name: `key ${id}`,
    secret: `sbsec_${id}`,
    scopes: ["state.read"],
    createdAt: T0,
    ...extra,
  };
}

export function adminContract(open: () => Promise<ContractStore>): void {
  test("ping: an open store's database answers", () =>
    using(open, async (store) => {
      await store.ping();
      await store.ping();
    }));

  test("settings: the first value written is the one every later call gets", () =>
    using(open, async (store) => {
      assert.equal(await store.ensureSetting("secret", "first"), "first");
      assert.equal(await store.ensureSetting("secret", "second"), "first");
      assert.equal(await store.ensureSetting("other", "x"), "x");
      assert.equal(await store.ensureSetting("secret", "third"), "first");
      // Concurrent callers (nodes starting together) all agree on one value.
      const values = await Promise.all(
        ["a", "b", "c", "d"].map((value) => store.ensureSetting("race", value)),
      );
      assert.equal(new Set(values).size, 1, values.join(", "));
      assert.ok(["a", "b", "c", "d"].includes(values[0] ?? ""));
    }));

  test("users: created, read back, and unique", () =>
    using(open, async (store) => {
      const user = { id: "usr_1", name: "Ada", createdAt: T0 + 3 };
      await store.createUser(user);
      assert.deepEqual(await store.getUser("usr_1"), user);
      assert.equal(await store.getUser("usr_2"), undefined);
      await assert.rejects(store.createUser({ ...user, name: "again" }), {
        code: "already-exists",
      });
      assert.equal((await store.getUser("usr_1"))?.name, "Ada");
    }));

  test("members: added, re-roled in place, and scoped by org", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a", "org_b");
      await store.createUser({ id: "usr_1", name: "Ada", createdAt: T0 });
      await store.createUser({ id: "usr_2", name: "Bob", createdAt: T0 });

      assert.equal(await store.getOrgRole("org_a", "usr_1"), undefined);
      await store.setOrgMember("org_a", "usr_1", "write", T0);
      await store.setOrgMember("org_b", "usr_2", "admin", T0);
      assert.equal(await store.getOrgRole("org_a", "usr_1"), "write");
      // Membership of one org grants nothing in another.
      assert.equal(await store.getOrgRole("org_b", "usr_1"), undefined);
      assert.equal(await store.getOrgRole("org_a", "usr_2"), undefined);

      await store.setOrgMember("org_a", "usr_1", "read", T0 + 1);
      assert.equal(await store.getOrgRole("org_a", "usr_1"), "read");
      await store.setOrgMember("org_a", "usr_1", "admin", T0 + 2);
      assert.equal(await store.getOrgRole("org_a", "usr_1"), "admin");
      assert.equal(await store.getOrgRole("org_b", "usr_2"), "admin", "the other org's member");
      const orgs = await store.listOrgsOfUser("usr_1", { limit: 10 });
      assert.deepEqual(
        orgs.map((membership) => [membership.org.id, membership.role]),
        [["org_a", "admin"]],
        "a changed role is one membership, not two",
      );

      await assert.rejects(store.setOrgMember("org_x", "usr_1", "read", T0), {
        code: "not-found",
      });
      await assert.rejects(store.setOrgMember("org_a", "usr_x", "read", T0), {
        code: "not-found",
      });
      assert.equal(await store.getOrgRole("org_x", "usr_1"), undefined);
      assert.equal(await store.getOrgRole("org_a", "usr_x"), undefined);
      // Not a role: misuse, refused without touching the membership.
      await assert.rejects(store.setOrgMember("org_a", "usr_1", "owner" as OrgRole, T0), TypeError);
      assert.equal(await store.getOrgRole("org_a", "usr_1"), "admin");
    }));

  test("a user's orgs: ordered by org id, paged, with the role in each", () =>
    using(open, async (store) => {
      const ids = ["org_e", "org_b", "org_d", "org_a", "org_c"];
      await seedOrgs(store, ...ids, "org_z");
      await store.createUser({ id: "usr_1", name: "Ada", createdAt: T0 });
      await store.createUser({ id: "usr_2", name: "Bob", createdAt: T0 });
      const roles: [string, OrgRole][] = [
        ["org_e", "admin"],
        ["org_b", "read"],
        ["org_d", "read"],
        ["org_a", "admin"],
        ["org_c", "write"],
      ];
      for (const [id, role] of roles) await store.setOrgMember(id, "usr_1", role, T0);
      // Another user's membership never shows up in usr_1's list.
      await store.setOrgMember("org_z", "usr_2", "admin", T0);
      await store.setOrgMember("org_a", "usr_2", "read", T0);

      const all = await store.listOrgsOfUser("usr_1", { limit: 100 });
      assert.deepEqual(
        all.map((membership) => [membership.org.id, membership.role]),
        [
          ["org_a", "admin"],
          ["org_b", "read"],
          ["org_c", "write"],
          ["org_d", "read"],
          ["org_e", "admin"],
        ],
      );
      assert.deepEqual(all[0], {
        org: { id: "org_a", name: "Org org_a", createdAt: T0 + 3 },
        role: "admin",
      } satisfies OrgMembership);

      const ofPage = async (page: Page) =>
        (await store.listOrgsOfUser("usr_1", page)).map((membership) => membership.org.id);
      assert.deepEqual(await ofPage({ limit: 2 }), ["org_a", "org_b"]);
      assert.deepEqual(await ofPage({ after: "org_b", limit: 2 }), ["org_c", "org_d"]);
      assert.deepEqual(await ofPage({ after: "org_d", limit: 2 }), ["org_e"]);
      assert.deepEqual(await ofPage({ after: "org_e", limit: 2 }), []);
      // A position need not be an org of the list: paging goes strictly past it.
      assert.deepEqual(await ofPage({ after: "org_bb", limit: 10 }), ["org_c", "org_d", "org_e"]);
      assert.deepEqual(await ofPage({ limit: 0 }), []);

      assert.deepEqual(
        (await store.listOrgsOfUser("usr_2", { limit: 10 })).map((m) => [m.org.id, m.role]),
        [
          ["org_a", "read"],
          ["org_z", "admin"],
        ],
      );
      assert.deepEqual(await store.listOrgsOfUser("usr_nobody", { limit: 10 }), []);
    }));

  test("admin sessions: created for an existing user, read by id, deleted once", () =>
    using(open, async (store) => {
      await store.createUser({ id: "usr_1", name: "Ada", createdAt: T0 });
      const session = { id: "ses_1", userId: "usr_1", secret: "s3cret", createdAt: T0 + 9 };
      await store.createAdminSession(session);
      await store.createAdminSession({ ...session, id: "ses_2", secret: "other" });
      assert.deepEqual(await store.getAdminSession("ses_1"), session);
      assert.equal(await store.getAdminSession("ses_3"), undefined);
      await assert.rejects(store.createAdminSession({ ...session, secret: "replaced" }), {
        code: "already-exists",
      });
      assert.equal((await store.getAdminSession("ses_1"))?.secret, "s3cret");
      await assert.rejects(store.createAdminSession({ ...session, id: "ses_9", userId: "usr_x" }), {
        code: "not-found",
      });
      assert.equal(await store.getAdminSession("ses_9"), undefined);

      assert.equal(await store.deleteAdminSession("ses_1"), true);
      assert.equal(await store.getAdminSession("ses_1"), undefined);
      assert.equal(await store.deleteAdminSession("ses_1"), false);
      assert.equal(await store.deleteAdminSession("ses_nope"), false);
      assert.equal((await store.getAdminSession("ses_2"))?.secret, "other", "the other stays");
    }));

  test("keys: an org lists its own keys by id, paged, without secrets", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a", "org_b");
      const ids = ["sbk_4", "sbk_1", "sbk_5", "sbk_3", "sbk_2"];
      for (const [i, id] of ids.entries()) {
        await store.createKey(key("org_a", id, { scopes: [`scope.${i}`], createdAt: T0 + i }));
      }
      await store.createKey(key("org_b", "sbk_0"));
      await store.createKey(key("org_b", "sbk_9"));

      const all = await store.listKeys("org_a", { limit: 100 });
      assert.deepEqual(
        all.map((info) => info.id),
        ["sbk_1", "sbk_2", "sbk_3", "sbk_4", "sbk_5"],
      );
      // deepEqual: exactly these fields, so no secret.
      assert.deepEqual(all[0], {
        id: "sbk_1",
        orgId: "org_a",
        name: "key sbk_1",
        scopes: ["scope.1"],
        createdAt: T0 + 1,
      });
      for (const info of all) assert.ok(!("secret" in info), `key ${info.id} lists its secret`);

      const ofPage = async (page: Page) =>
        (await store.listKeys("org_a", page)).map((info) => info.id);
      assert.deepEqual(await ofPage({ limit: 2 }), ["sbk_1", "sbk_2"]);
      assert.deepEqual(await ofPage({ after: "sbk_2", limit: 2 }), ["sbk_3", "sbk_4"]);
      assert.deepEqual(await ofPage({ after: "sbk_4", limit: 2 }), ["sbk_5"]);
      assert.deepEqual(await ofPage({ after: "sbk_5", limit: 2 }), []);
      assert.deepEqual(await ofPage({ limit: 0 }), []);

      assert.deepEqual(
        (await store.listKeys("org_b", { limit: 10 })).map((info) => info.id),
        ["sbk_0", "sbk_9"],
      );
      assert.deepEqual(await store.listKeys("org_x", { limit: 10 }), []);
      await store.deleteKey("org_a", "sbk_3");
      assert.deepEqual(await ofPage({ after: "sbk_2", limit: 2 }), ["sbk_4", "sbk_5"]);
    }));
}
