// What an org member's role lets its admin session do (api-contract §1.8–1.9, GET /orgs `role`),
// through the official client: `read` reads, `write` also writes but administers nothing (no
// deletes, pauses, keys, providers), and neither may act as an end user, which needs the right to
// mint keys. Every refusal is 403 missing-scope and changes nothing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { StateBackedClient, errors } from "@statebacked/client";
import { mintAdminSession } from "../../src/auth/admin-sessions.js";
import { systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import type { OrgRole } from "../../src/store/store.js";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { adminClient } from "../support/official-client.js";

const MACHINE = `
import { createMachine } from "xstate";
export default createMachine({ id: "door", initial: "shut", states: { shut: { on: { open: "open" } }, open: { on: { shut: "shut" } } } });
export const allowRead = () => true;
export const allowWrite = () => true;
`;

let api: ApiServer;
let owner: StateBackedClient;

before(async () => {
  api = await startApiServer();
  owner = adminClient(api);
  await owner.machines.create("door");
  await owner.machineVersions.create("door", { code: MACHINE, makeCurrent: true });
  await owner.machineInstances.create("door", { slug: "front" });
});

after(() => api.dispose());

async function member(role: OrgRole, actAs?: Record<string, unknown>): Promise<StateBackedClient> {
  const store = api.server.backstate.store;
  const userId = randomIds("usr");
  await store.createUser({ id: userId, name: role, createdAt: systemClock.now() });
  await store.setOrgMember(api.orgId, userId, role, systemClock.now());
  const { token } = await mintAdminSession(store, randomIds, systemClock, userId);
  return new StateBackedClient(token, {
    apiHost: api.url,
    orgId: api.orgId,
    ...(actAs ? { actAs } : {}),
  });
}

const missingScope = (error: unknown) => {
  assert.ok(error instanceof errors.MissingScopeError, String(error));
  return true;
};

/** The org as the owner sees it: machines, instances with state and status, keys. */
async function orgState() {
  const instance = await owner.machineInstances.admin.get("door", "front");
  return {
    machines: (await owner.machines.list()).machines.map((machine) => machine.slug),
    instances: (await owner.machineInstances.list("door")).instances.map((i) => i.slug),
    front: [instance.state, instance.status],
    keys: (await owner.keys.list()).keys.map((key) => key.id),
    providers: (await owner.tokenProviders.list()).tokenProviders.map((p) => p.service),
  };
}

test("a read member reads and changes nothing", async () => {
  const reader = await member("read");
  const orgs = await reader.orgs.list();
  assert.deepEqual(
    orgs.orgs.map((org) => [org.id, org.role]),
    [[api.orgId, "read"]],
  );
  assert.deepEqual(
    (await reader.machines.list()).machines.map((machine) => machine.slug),
    ["door"],
  );
  assert.equal((await reader.machineInstances.get("door", "front")).state, "shut");

  const before = await orgState();
  await assert.rejects(reader.machines.create("other"), missingScope);
  await assert.rejects(reader.machineInstances.create("door", { slug: "back" }), missingScope);
  await assert.rejects(
    reader.machineInstances.sendEvent("door", "front", { event: "open" }),
    missingScope,
  );
  await assert.rejects(reader.machineInstances.admin.get("door", "front"), missingScope);
  await assert.rejects(reader.keys.create({ name: "k", use: "production" }), missingScope);
  assert.deepEqual(await orgState(), before);
});

test("a write member writes but administers nothing", async () => {
  const writer = await member("write");
  assert.deepEqual(
    (await writer.orgs.list()).orgs.map((org) => org.role),
    ["write"],
  );
  await writer.machineInstances.create("door", { slug: "side" });
  assert.equal(
    (await writer.machineInstances.sendEvent("door", "side", { event: "open" })).state,
    "open",
  );

  const before = await orgState();
  await assert.rejects(
    writer.machineInstances.dangerously.setStatus("door", "front", { status: "paused" }),
    missingScope,
  );
  await assert.rejects(
    writer.machineInstances.dangerously.delete("door", "front", {
      dangerDataWillBeDeletedForever: true,
    }),
    missingScope,
  );
  await assert.rejects(
    writer.machines.dangerously.delete("door", { dangerDataWillBeDeletedForever: true }),
    missingScope,
  );
  await assert.rejects(writer.keys.create({ name: "k", use: "production" }), missingScope);
  await assert.rejects(writer.keys.list(), missingScope);
  await assert.rejects(
    writer.tokenProviders.upsert({ service: "s", keyId: "sbk_x", mapping: {} }),
    missingScope,
  );
  assert.deepEqual(await orgState(), before);
});

test("neither a read nor a write member may act as an end user", async () => {
  for (const role of ["read", "write"] as const) {
    const actor = await member(role, { sub: "someone" });
    const before = await orgState();
    await assert.rejects(actor.machineInstances.get("door", "front"), missingScope);
    await assert.rejects(
      actor.machineInstances.sendEvent("door", "front", { event: "open" }),
      missingScope,
    );
    assert.deepEqual(await orgState(), before, role);
  }
  // The admin may.
  const admin = await member("admin", { sub: "someone" });
  assert.equal((await admin.machineInstances.get("door", "front")).state, "shut");
});
