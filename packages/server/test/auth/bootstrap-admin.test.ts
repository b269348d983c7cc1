// Several nodes starting at once on an empty database agree on one bootstrap admin and org.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ensureBootstrapAdmin } from "../../src/auth/admin-sessions.js";
import { systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";

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
