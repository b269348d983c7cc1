// How an admin session's org is found (api-contract §1.9), as the official client meets it: a
// user in no org gets 403 missing-org (MissingOrgError) everywhere but /orgs, where it sees an
// empty list and can create one (smply's first login); in one org the header may be left out; in
// several it must be sent (400 specify-org); an org the user is not in is out of reach, whatever
// the call, and nothing there changes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { StateBackedClient, errors } from "@statebacked/client";
import { mintAdminSession } from "../../src/auth/admin-sessions.js";
import { systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import { openSocket, rtUrl } from "../realtime/raw-socket.js";
import { startApiServer, type ApiServer } from "../support/api-server.js";

let api: ApiServer;
let newcomer: string;

before(async () => {
  api = await startApiServer();
  const store = api.server.backstate.store;
  const userId = randomIds("usr");
  await store.createUser({ id: userId, name: "newcomer", createdAt: systemClock.now() });
  newcomer = (await mintAdminSession(store, randomIds, systemClock, userId)).token;
});

after(() => api.dispose());

const client = (orgId?: string) =>
  new StateBackedClient(newcomer, { apiHost: api.url, ...(orgId ? { orgId } : {}) });

test("a user in no org: missing-org, an empty org list, then an org of its own", async () => {
  await assert.rejects(client().machines.list(), errors.MissingOrgError);
  await assert.rejects(client().machines.create("early"), errors.MissingOrgError);
  await assert.rejects(openSocket(rtUrl(api.url, newcomer)), {
    status: 403,
    code: "missing-org",
  });
  assert.deepEqual(await client().orgs.list(), { orgs: [] });

  const { id } = await client().orgs.create({ name: "mine", allowAnonymousAccess: false });
  const listed = await client().orgs.list();
  assert.deepEqual(
    listed.orgs.map((org) => [org.id, org.name, org.role]),
    [[id, "mine", "admin"]],
  );
  // One org: the header may be left out.
  await client().machines.create("first");
  assert.deepEqual(
    (await client().machines.list()).machines.map((machine) => machine.slug),
    ["first"],
  );
  assert.deepEqual((await client(id).machines.list()).machines.length, 1);
});

test("a user in several orgs names one; another's org is out of reach and unchanged", async () => {
  const { id: second } = await client().orgs.create({ name: "second" });
  await assert.rejects(client().machines.list(), errors.OrgHeaderRequiredError);
  assert.deepEqual((await client(second).machines.list()).machines, []);

  // The bootstrap admin's org: the newcomer is no member of it.
  const theirs = client(api.orgId);
  await assert.rejects(theirs.machines.list(), errors.NotFoundError);
  await assert.rejects(theirs.machines.create("intruder"), errors.NotFoundError);
  await assert.rejects(
    theirs.keys.create({ name: "intruder", use: "production" }),
    errors.NotFoundError,
  );
  await assert.rejects(openSocket(rtUrl(api.url, newcomer, api.orgId)), { status: 404 });
  const own = await api.admin("GET", "/machines");
  assert.ok(!JSON.stringify(own.body).includes("intruder"));
  const keys = await api.admin("GET", "/keys");
  assert.ok(!JSON.stringify(keys.body).includes("intruder"));
  // A malformed org header is a 400 naming it, not a lookup.
  await assert.rejects(client("not-an-org").machines.list(), (error: unknown) => {
    assert.ok(error instanceof errors.ClientError);
    assert.equal(error.code, "invalid-parameter");
    return true;
  });
});
