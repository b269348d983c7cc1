// Black-box conformance: the real, published @statebacked/client@0.1.37 (with `ws` as its
// WebSocket on Node 20) against a real Backstate server on a loopback port. Every call below is
// the official client's own request; the assertions are on what the client returns or throws.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import type { StateBackedClient } from "@statebacked/client";
import { errors } from "@statebacked/client";
import { bundleFixture } from "../support/bundles.js";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { officialClient } from "../support/official-client.js";

// A toggle whose authorizers depend on the caller: allowWrite refuses "mallory" and the event
// "forbidden"; allowRead refuses "eve". Imports xstate, as users' own bundles do.
const TOGGLE = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "toggle",
  initial: "off",
  context: { public: { flips: 0, by: [] }, secret: "s3cret" },
  states: {
    off: { on: { toggle: { target: "on", actions: "flip" } } },
    on: { tags: ["lit"], on: { toggle: { target: "off", actions: "flip" }, finish: "done" } },
    done: { type: "final" },
  },
}, {
  actions: {
    flip: assign({
      public: ({ context, event }) => ({
        flips: context.public.flips + 1,
        by: [...context.public.by, event.by ?? "anonymous"],
      }),
    }),
  },
});
export const allowRead = ({ authContext }) => authContext.sub !== "eve";
export const allowWrite = (request) =>
  request.authContext.sub !== "mallory" &&
  (request.type === "initialization" || request.event.type !== "forbidden");
`;

let api: ApiServer;
let admin: StateBackedClient;
let userKey: ApiKey;

function clientWith(token: string | (() => Promise<string>), opts: object = {}): StateBackedClient {
  return officialClient(api.url, token, opts);
}

function userClient(sub: string, key: ApiKey = userKey): StateBackedClient {
  return clientWith(() => api.tokenFor(key, { sub }));
}

before(async () => {
  api = await startApiServer();
  admin = clientWith(api.adminToken, { orgId: api.orgId });
  await admin.machines.create("toggle");
  await admin.machineVersions.create("toggle", {
    code: TOGGLE,
    clientInfo: "1.0.0",
    makeCurrent: true,
  });
  userKey = await admin.keys.create({ name: "app", use: "production" });
});

after(() => api.dispose());

describe("machines and versions", () => {
  test("a machine and a gzipped version from code, as smply uploads them", async () => {
    await admin.machines.create("gzipped");
    const code = await bundleFixture("workflow-v4.js", "v4-npm");
    const { machineVersionId } = await admin.machineVersions.create("gzipped", {
      gzippedCode: gzipSync(code),
      clientInfo: "abc123",
      makeCurrent: true,
    });
    assert.match(machineVersionId, /^ver_[A-Za-z0-9_-]+$/);

    const { machine } = await admin.machines.get("gzipped");
    assert.deepEqual(machine.currentVersion?.id, machineVersionId);
    assert.equal(machine.currentVersion?.clientInfo, "abc123");
    const { versions } = await admin.machineVersions.list("gzipped");
    assert.deepEqual(
      versions.map((v) => v.id),
      [machineVersionId],
    );
    const { machines } = await admin.machines.list();
    assert.ok(
      machines.some((m) => m.slug === "gzipped" && m.currentVersion?.id === machineVersionId),
    );
  });

  test("a version that is not current leaves new instances on the current one", async () => {
    const before = (await admin.machines.get("toggle")).machine.currentVersion?.id;
    const { machineVersionId } = await admin.machineVersions.create("toggle", {
      code: TOGGLE,
      clientInfo: "1.0.1-draft",
      makeCurrent: false,
    });
    assert.notEqual(machineVersionId, before);
    assert.equal((await admin.machines.get("toggle")).machine.currentVersion?.id, before);
  });

  test("a duplicate machine is a ConflictError, an unknown one a NotFoundError", async () => {
    await assert.rejects(admin.machines.create("toggle"), errors.ConflictError);
    await assert.rejects(admin.machines.get("no-such-machine"), errors.NotFoundError);
  });

  test("a bundle without authorizers is refused at finalize, and no version appears", async () => {
    await admin.machines.create("no-authorizers");
    await assert.rejects(
      admin.machineVersions.create("no-authorizers", {
        code: `import { createMachine } from "xstate"; export default createMachine({});`,
        makeCurrent: true,
      }),
      (err: unknown) => err instanceof errors.ClientError && err.status === 400,
    );
    assert.deepEqual((await admin.machineVersions.list("no-authorizers")).versions, []);
  });
});

describe("instances through an end user's key token", () => {
  test("getOrCreate creates once (after the 404), then returns the existing instance", async () => {
    const alice = userClient("alice");
    const created = await alice.machineInstances.getOrCreate("toggle", "alice-1", {
      context: { note: "hi" },
    });
    assert.equal(created.state, "off");
    assert.deepEqual(created.publicContext, { flips: 0, by: [] });
    assert.deepEqual(created.tags, []);
    assert.equal(created.done, false);
    assert.equal(typeof created.ts, "number");

    const again = await alice.machineInstances.getOrCreate("toggle", "alice-1", {});
    assert.deepEqual(again, created);
  });

  test("events as a string and as an object; get reads the same state", async () => {
    const alice = userClient("alice");
    await alice.machineInstances.create("toggle", { slug: "alice-2" });
    const on = await alice.machineInstances.sendEvent("toggle", "alice-2", { event: "toggle" });
    assert.equal(on.state, "on");
    assert.deepEqual(on.tags, ["lit"]);
    const off = await alice.machineInstances.sendEvent("toggle", "alice-2", {
      event: { type: "toggle", by: "alice" },
    });
    assert.equal(off.state, "off");
    assert.deepEqual(off.publicContext, { flips: 2, by: ["anonymous", "alice"] });
    assert.ok(off.ts > on.ts, "ts increases per instance");
    const read = await alice.machineInstances.get("toggle", "alice-2");
    assert.deepEqual(read, off);
    assert.equal((read as { context?: unknown }).context, undefined, "no private context leaks");
  });

  test("a missing instance is a NotFoundError; creating an existing one a ConflictError", async () => {
    const alice = userClient("alice");
    await assert.rejects(alice.machineInstances.get("toggle", "nobody"), errors.NotFoundError);
    await alice.machineInstances.create("toggle", { slug: "alice-3" });
    await assert.rejects(
      alice.machineInstances.create("toggle", { slug: "alice-3" }),
      errors.ConflictError,
    );
  });

  test("allowWrite refusing is a RejectedByMachineAuthorizerError that changes nothing", async () => {
    const alice = userClient("alice");
    const mallory = userClient("mallory");
    await alice.machineInstances.create("toggle", { slug: "guarded" });
    await assert.rejects(
      mallory.machineInstances.sendEvent("toggle", "guarded", { event: "toggle" }),
      (err: unknown) =>
        err instanceof errors.RejectedByMachineAuthorizerError &&
        err.status === 403 &&
        err.code === "rejected-by-machine-authorizer",
    );
    await assert.rejects(
      alice.machineInstances.sendEvent("toggle", "guarded", { event: "forbidden" }),
      errors.RejectedByMachineAuthorizerError,
    );
    await assert.rejects(
      mallory.machineInstances.create("toggle", { slug: "mallorys" }),
      errors.RejectedByMachineAuthorizerError,
    );
    assert.equal((await alice.machineInstances.get("toggle", "guarded")).state, "off");
    await assert.rejects(alice.machineInstances.get("toggle", "mallorys"), errors.NotFoundError);
  });

  test("allowRead refusing is a RejectedByMachineAuthorizerError", async () => {
    await userClient("alice").machineInstances.create("toggle", { slug: "private" });
    await assert.rejects(
      userClient("eve").machineInstances.get("toggle", "private"),
      errors.RejectedByMachineAuthorizerError,
    );
  });

  test("a key without the needed scope is a MissingScopeError", async () => {
    const readOnly = await admin.keys.create({ name: "reader", scopes: ["state.read"] });
    const reader = userClient("alice", readOnly);
    await assert.rejects(
      reader.machineInstances.create("toggle", { slug: "not-allowed" }),
      (err: unknown) => err instanceof errors.MissingScopeError && err.code === "missing-scope",
    );
    await assert.rejects(reader.machines.list(), errors.MissingScopeError);
    await assert.rejects(userClient("alice").machines.list(), errors.MissingScopeError);
  });

  test("an expired token is refused with 403 (UnauthorizedError) and its reason", async () => {
    const expiredAt = Math.floor(Date.now() / 1000) - 120;
    const expired = clientWith(await api.tokenFor(userKey, { sub: "alice" }, expiredAt));
    await assert.rejects(
      expired.machineInstances.get("toggle", "alice-1"),
      (err: unknown) =>
        err instanceof errors.UnauthorizedError &&
        err.status === 403 &&
        err.code === "token-expired",
    );
  });

  test("a deleted key's tokens stop verifying at once", async () => {
    const doomed = await admin.keys.create({ name: "doomed", use: "production" });
    const client = clientWith(await api.tokenFor(doomed, { sub: "alice" }));
    await client.machineInstances.create("toggle", { slug: "before-delete" });
    await admin.keys.delete(doomed.id);
    await assert.rejects(
      client.machineInstances.get("toggle", "before-delete"),
      (err: unknown) =>
        err instanceof errors.UnauthorizedError &&
        err.status === 403 &&
        err.code === "token-unknown-key",
    );
    assert.ok(!(await admin.keys.list()).keys.some((k) => k.id === doomed.id));
  });

  // Events verify a key this node has read from its memory; the event's commit checks the key.
  // Deleting it in the store behind the server's back is what another node's delete looks like.
  test("a key deleted by another node fails at once on events, which then write nothing", async () => {
    const store = api.server.services.store;
    const refusedAsUnknownKey = (err: unknown) =>
      err instanceof errors.UnauthorizedError &&
      err.status === 403 &&
      err.code === "token-unknown-key";
    // Each case with a key of its own that this node has used, then deleted elsewhere.
    let keys = 0;
    const usedThenDeletedElsewhere = async () => {
      const key = await admin.keys.create({ name: `elsewhere-${++keys}`, use: "production" });
      const token = await api.tokenFor(key, { sub: "alice" });
      const client = clientWith(token);
      const name = `deleted-elsewhere-${keys}`;
      await client.machineInstances.create("toggle", { slug: name });
      await client.machineInstances.sendEvent("toggle", name, { event: "toggle" });
      // The next event reads no key: this node remembers it.
      const getKey = store.getKey.bind(store);
      let reads = 0;
      store.getKey = (id) => (reads++, getKey(id));
      try {
        await client.machineInstances.sendEvent("toggle", name, { event: "toggle" });
      } finally {
        store.getKey = getKey;
      }
      assert.equal(reads, 0, "the key was verified from memory");
      assert.equal(await store.deleteKey(api.orgId, key.id), true);
      return { client, token, name };
    };
    const unchangedSinceDeletion = async (name: string) => {
      const state = await admin.machineInstances.admin.get("toggle", name);
      assert.equal(state.state, "off");
      assert.equal((state.context as { public: { flips: number } }).public.flips, 2);
    };

    // A step that would commit, one allowWrite refuses, one to a missing instance: all refused for the key.
    for (const event of ["toggle", "forbidden", "missing"]) {
      const { client, name } = await usedThenDeletedElsewhere();
      await assert.rejects(
        client.machineInstances.sendEvent("toggle", event === "missing" ? "never" : name, {
          event,
        }),
        refusedAsUnknownKey,
        event,
      );
      await unchangedSinceDeletion(name);
    }
    // A malformed body is refused for the key too, not for the body.
    const { token, name } = await usedThenDeletedElsewhere();
    const malformed = await fetch(`${api.url}/machines/toggle/i/${name}/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{",
    });
    assert.equal(malformed.status, 403);
    assert.equal(((await malformed.json()) as { code: string }).code, "token-unknown-key");
  });
});

describe("administration with an admin session", () => {
  test("act-as: the authorizers see the claims of the x-statebacked-act header", async () => {
    const asMallory = clientWith(api.adminToken, { orgId: api.orgId, actAs: { sub: "mallory" } });
    await assert.rejects(
      asMallory.machineInstances.create("toggle", { slug: "acted" }),
      errors.RejectedByMachineAuthorizerError,
    );
    const asBob = clientWith(api.adminToken, { orgId: api.orgId, actAs: { sub: "bob" } });
    const created = await asBob.machineInstances.create("toggle", { slug: "acted" });
    assert.equal(created.state, "off");
    await assert.rejects(
      clientWith(api.adminToken, { orgId: api.orgId, actAs: { sub: "eve" } }).machineInstances.get(
        "toggle",
        "acted",
      ),
      errors.RejectedByMachineAuthorizerError,
    );
  });

  test("act-as from a key without org.keys.write is refused", async () => {
    const actor = clientWith(await api.tokenFor(userKey, { sub: "alice" }), {
      actAs: { sub: "bob" },
    });
    await assert.rejects(
      actor.machineInstances.create("toggle", { slug: "impostor" }),
      errors.MissingScopeError,
    );
  });

  test("admin read, instance list, transitions, pause and resume, delete", async () => {
    const alice = userClient("alice");
    await alice.machineInstances.create("toggle", { slug: "managed", context: { note: "x" } });
    await alice.machineInstances.sendEvent("toggle", "managed", { event: "toggle" });

    const state = await admin.machineInstances.admin.get("toggle", "managed");
    assert.equal(state.state, "on");
    assert.equal(state.status, "running");
    assert.equal((state.context as { secret?: string }).secret, "s3cret");
    assert.match(state.machineVersion.id, /^ver_/);

    const { instances } = await admin.machineInstances.list("toggle");
    assert.ok(instances.some((i) => i.slug === "managed" && i.status === "running"));

    const { transitions } = await admin.machineInstances.listTransitions("toggle", "managed");
    assert.deepEqual(
      transitions.map((t) => t.state),
      ["on", "off"],
      "newest first",
    );
    assert.deepEqual(transitions[0]?.event, { type: "toggle" });

    await admin.machineInstances.dangerously.setStatus("toggle", "managed", { status: "paused" });
    await assert.rejects(
      alice.machineInstances.sendEvent("toggle", "managed", { event: "toggle" }),
      (err: unknown) => err instanceof errors.ConflictError && err.code === "invalid-state",
    );
    await admin.machineInstances.dangerously.setStatus("toggle", "managed", { status: "running" });
    assert.equal(
      (await alice.machineInstances.sendEvent("toggle", "managed", { event: "toggle" })).state,
      "off",
    );

    await admin.machineInstances.dangerously.delete("toggle", "managed", {
      dangerDataWillBeDeletedForever: true,
    });
    await assert.rejects(alice.machineInstances.get("toggle", "managed"), errors.NotFoundError);
  });

  test("a history of large events comes in pages of bounded size", async () => {
    const alice = userClient("alice");
    await alice.machineInstances.create("toggle", { slug: "bulky" });
    // Four events of 3 MiB each: a hundred to a page would be 300 MiB in one answer.
    const pad = "x".repeat(3 * 1024 * 1024);
    for (let i = 0; i < 4; i++) {
      await alice.machineInstances.sendEvent("toggle", "bulky", { event: { type: "toggle", pad } });
    }
    const first = await admin.machineInstances.listTransitions("toggle", "bulky");
    assert.equal(first.transitions.length, 3, "the page stops after the row past 8 MiB");
    assert.ok(first.cursor, "and tells that more follow");
    assert.equal((first.transitions[0]?.event as { pad?: string }).pad, pad, "events whole");
    const second = await admin.machineInstances.listTransitions("toggle", "bulky", {
      cursor: first.cursor,
    });
    assert.deepEqual(
      second.transitions.map((t) => (t.event as { type: string }).type),
      ["toggle", "xstate.init"],
    );
    assert.equal(second.cursor, undefined);
  });

  test("a machine with instances cannot be deleted; without, it can", async () => {
    await admin.machines.create("short-lived");
    await admin.machineVersions.create("short-lived", { code: TOGGLE, makeCurrent: true });
    await userClient("alice").machineInstances.create("short-lived", { slug: "one" });
    const confirm = { dangerDataWillBeDeletedForever: true } as const;
    await assert.rejects(
      admin.machines.dangerously.delete("short-lived", confirm),
      errors.ConflictError,
    );
    await admin.machineInstances.dangerously.delete("short-lived", "one", confirm);
    await admin.machines.dangerously.delete("short-lived", confirm);
    await assert.rejects(admin.machines.get("short-lived"), errors.NotFoundError);
  });

  test("orgs: list, create, and the org header choosing between them", async () => {
    const { orgs } = await admin.orgs.list();
    assert.deepEqual(
      orgs.map((o) => [o.id, o.role]),
      [[api.orgId, "admin"]],
    );
    const { id } = await admin.orgs.create({ name: "second" });
    assert.match(id, /^org_/);
    // With two orgs, a request that names none must say which.
    const unspecific = clientWith(api.adminToken);
    await assert.rejects(unspecific.machines.list(), errors.OrgHeaderRequiredError);
    const second = clientWith(api.adminToken, { orgId: id });
    assert.deepEqual((await second.machines.list()).machines, []);
    await assert.rejects(second.machines.get("toggle"), errors.NotFoundError);
  });

  test("a key token cannot manage orgs (MissingUserError)", async () => {
    const ci = await admin.keys.create({ name: "ci", use: "ci" });
    await assert.rejects(userClient("alice", ci).orgs.list(), errors.MissingUserError);
  });

  test("endpoints of later features answer 501 not-implemented", async () => {
    await assert.rejects(
      admin.logs.retrieve(new Date()),
      (err: unknown) => err instanceof errors.ApiError && err.status === 501,
    );
    await assert.rejects(
      admin.billing.get(),
      (err: unknown) => err instanceof errors.ApiError && err.code === "not-implemented",
    );
  });
});
