// Several nodes starting at once on an empty database agree on one bootstrap admin and org; a
// start cut short while creating it does not keep the database from ever starting again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ensureBootstrapAdmin } from "../../src/auth/admin-sessions.js";
import { ANONYMOUS_SERVICE } from "../../src/auth/token-exchange/anonymous.js";
import { ManualClock, systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import { overriding } from "../support/overriding-store.js";

test("concurrent bootstraps agree on one admin, created once", async () => {
  const store = openSqliteStore({ path: ":memory:" });
  await store.migrate();
  try {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => ensureBootstrapAdmin(store, randomIds, systemClock)),
    );
    assert.equal(new Set(results.map((r) => `${r.userId} ${r.orgId}`)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
    const { userId, orgId } = results[0]!;
    assert.equal(await store.getOrgRole(orgId, userId), "admin");
    const again = await ensureBootstrapAdmin(store, randomIds, systemClock);
    assert.deepEqual([again.userId, again.orgId, again.created], [userId, orgId, false]);
  } finally {
    await store.close();
  }
});

test("a first start cut short after claiming the admin's ids is finished by a later start", async () => {
  const store = openSqliteStore({ path: ":memory:" });
  await store.migrate();
  try {
    const clock = new ManualClock();
    // The first start dies after creating the user (as a kill between two writes leaves it).
    const dying = overriding(store, { createOrg: () => Promise.reject(new Error("killed")) });
    await assert.rejects(ensureBootstrapAdmin(dying, randomIds, clock), /killed/);
    const claimed = JSON.parse(await store.ensureSetting("bootstrap-admin", "unused")) as {
      userId: string;
      orgId: string;
    };
    assert.equal(await store.getOrgRole(claimed.orgId, claimed.userId), undefined);

    // Started again a minute later: nobody is creating the admin any more.
    clock.advance(60_000);
    const again = await ensureBootstrapAdmin(store, randomIds, clock);
    assert.deepEqual([again.userId, again.orgId], [claimed.userId, claimed.orgId]);
    assert.equal(await store.getOrgRole(again.orgId, again.userId), "admin");
    assert.ok(await store.getOrg(again.orgId));
    assert.ok(await store.getTokenProvider(again.orgId, ANONYMOUS_SERVICE), "anonymous access");
    const third = await ensureBootstrapAdmin(store, randomIds, clock);
    assert.deepEqual(
      [third.userId, third.orgId, third.created],
      [again.userId, again.orgId, false],
    );
  } finally {
    await store.close();
  }
});

test("two nodes finishing an unfinished admin together both start", async () => {
  const store = openSqliteStore({ path: ":memory:" });
  await store.migrate();
  try {
    const clock = new ManualClock();
    // The first start dies before creating anything after its claim.
    const dying = overriding(store, { createUser: () => Promise.reject(new Error("killed")) });
    await assert.rejects(ensureBootstrapAdmin(dying, randomIds, clock), /killed/);

    // Two nodes (not alone on the database) start a minute later, at the same time.
    clock.advance(60_000);
    const [a, b] = await Promise.all([
      ensureBootstrapAdmin(store, randomIds, clock),
      ensureBootstrapAdmin(store, randomIds, clock),
    ]);
    assert.deepEqual([a.userId, a.orgId], [b.userId, b.orgId]);
    assert.equal(await store.getOrgRole(a.orgId, a.userId), "admin");
    assert.ok(await store.getOrg(a.orgId));
    const provider = await store.getTokenProvider(a.orgId, ANONYMOUS_SERVICE);
    assert.ok(provider !== undefined && (await store.getKey(provider.keyId)) !== undefined);
  } finally {
    await store.close();
  }
});
