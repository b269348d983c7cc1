// A key's principal needs nothing from the store and is answered at once; an admin's org may
// need the store and comes as a promise. The scope rules are the same either way.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KeyRecord, Store } from "../store/store.js";
import type { Caller } from "./principal.js";
import { resolvePrincipal } from "./resolve-principal.js";

const KEY = {
  id: "sbk_principalTestKey0000",
  orgId: "org_keys",
  name: "k",
  secret: "sbsec_principal-test-secret",
  // A scope this server does not know is held by no principal.
  scopes: ["events.write", "state.read", "no.such-scope"],
  createdAt: 0,
} satisfies KeyRecord;

const keyCaller = (key: KeyRecord): Caller => ({
  kind: "key",
  key,
  claims: { sub: "alice" },
  expiresAt: 0,
});

const noStore = new Proxy({} as Store, {
  get: (_, name) => () => assert.fail(`a key's principal read the store (${String(name)})`),
});

const headers = { org: "org_elsewhere", act: undefined };

test("a key's principal is answered at once, in the key's own org, with its known scopes", () => {
  const principal = resolvePrincipal(noStore, keyCaller(KEY), headers);
  assert.ok(!(principal instanceof Promise));
  assert.equal(principal.orgId, "org_keys", "the org header cannot move a key elsewhere");
  assert.deepEqual([...principal.scopes].sort(), ["events.write", "state.read"]);
  assert.deepEqual(principal.authContext, { sub: "alice" });
  // The scopes of one record are worked out once; a record read anew gets its own.
  const again = resolvePrincipal(noStore, keyCaller(KEY), headers) as typeof principal;
  assert.equal(again.scopes, principal.scopes);
  const reread = { ...KEY, scopes: ["events.write"] };
  const fresh = resolvePrincipal(noStore, keyCaller(reread), headers) as typeof principal;
  assert.deepEqual([...fresh.scopes], ["events.write"]);
});

test("acting as someone else needs org.keys.write, for a key as for anyone", () => {
  const act = { org: undefined, act: '{"sub":"bob"}' };
  assert.throws(() => resolvePrincipal(noStore, keyCaller(KEY), act), { code: "missing-scope" });
  const minter = { ...KEY, scopes: ["org.keys.write"] };
  const principal = resolvePrincipal(noStore, keyCaller(minter), act);
  assert.ok(!(principal instanceof Promise));
  assert.deepEqual(principal.authContext, { sub: "bob" });
});

test("an admin's principal comes from the store, as a promise", async () => {
  const store = {
    getOrgRole: (orgId: string, userId: string) =>
      Promise.resolve(orgId === "org_mine" && userId === "usr_1" ? "admin" : undefined),
  } as unknown as Store;
  const admin: Caller = {
    kind: "admin",
    session: { id: "ses_1", userId: "usr_1", secret: "s", createdAt: 0 },
    claims: {},
    expiresAt: 0,
  };
  const found = resolvePrincipal(store, admin, { org: "org_mine", act: undefined });
  assert.ok(found instanceof Promise);
  assert.equal((await found).orgId, "org_mine");
  await assert.rejects(
    Promise.resolve(resolvePrincipal(store, admin, { org: "org_other", act: undefined })),
    { code: "not-found" },
  );
});
