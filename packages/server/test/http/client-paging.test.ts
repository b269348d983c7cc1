// Every listing walked past its first page by the real @statebacked/client@0.1.37, as smply's list
// commands walk them (`do { … } while (cursor)`): each row comes exactly once, in one order, the
// last page carries no cursor, and each row has the fields api-contract §4 gives it (optional
// ones absent rather than null, dates as Date.toISOString() writes them).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { StateBackedClient } from "@statebacked/client";
import { errors } from "@statebacked/client";
import { PAGE_SIZE } from "../../src/http/cursor.js";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { adminClient } from "../support/official-client.js";

// One page and a bit: the second page must exist and be short.
const ROWS = PAGE_SIZE + 3;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const MACHINE = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "counter",
  initial: "idle",
  context: { public: { n: 0 } },
  states: {
    idle: { on: { bump: { actions: assign({ public: ({ context }) => ({ n: context.public.n + 1 }) }) } } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

let api: ApiServer;
let admin: StateBackedClient;

type Page<T> = { cursor?: string } & Record<string, unknown> & { items?: T[] };

/** Follows `cursor` as smply does, answering every row and how many pages there were. */
async function walk<T>(
  field: string,
  list: (opts: { cursor?: string }) => Promise<unknown>,
): Promise<{ rows: T[]; pages: number }> {
  const rows: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = (await list(cursor === undefined ? {} : { cursor })) as Page<T>;
    pages += 1;
    assert.ok(Array.isArray(page[field]), `the page holds ${field}`);
    assert.ok(
      !("cursor" in page) || typeof page.cursor === "string",
      "cursor is absent or a string",
    );
    assert.ok((page[field] as T[]).length <= PAGE_SIZE, "no page is longer than the page size");
    rows.push(...(page[field] as T[]));
    cursor = page.cursor;
    assert.ok(pages <= 10, "the listing ends");
  } while (cursor);
  return { rows, pages };
}

function assertKeys(row: object, required: string[], optional: string[] = []): void {
  const keys = Object.keys(row);
  for (const key of required) assert.ok(keys.includes(key), `${key} in ${JSON.stringify(row)}`);
  for (const key of keys) {
    assert.ok(
      required.includes(key) || optional.includes(key),
      `no field ${key} beyond the contract's in ${JSON.stringify(row)}`,
    );
  }
}

before(async () => {
  api = await startApiServer();
  admin = adminClient(api);
});

after(() => api.dispose());

describe("listings past one page, walked by the official client", () => {
  test("machines: each once, the current version only where there is one", async () => {
    const names = Array.from({ length: ROWS }, (_, i) => `m-${String(i).padStart(3, "0")}`);
    for (const name of names) await admin.machines.create(name);
    await admin.machineVersions.create("m-000", { code: MACHINE, clientInfo: "v1" });

    const { rows, pages } = await walk<{
      slug: string;
      createdAt: string;
      currentVersion?: object;
    }>("machines", (opts) => admin.machines.list(opts));
    assert.equal(pages, 2);
    assert.deepEqual(
      rows.map((row) => row.slug),
      names,
    );
    for (const row of rows) {
      assertKeys(row, ["slug", "createdAt"], ["currentVersion"]);
      assert.match(row.createdAt, ISO);
    }
    const withVersion = rows.filter((row) => row.currentVersion !== undefined);
    assert.deepEqual(
      withVersion.map((row) => row.slug),
      ["m-000"],
    );
    assertKeys(withVersion[0]!.currentVersion!, ["id", "createdAt", "clientInfo"]);

    // GET /machines/{m}: wrapped in `machine`, no slug; currentVersion only once there is one.
    const bare = (await admin.machines.get("m-001")) as unknown as { machine: object };
    assertKeys(bare, ["machine"]);
    assertKeys(bare.machine, ["createdAt", "indexes"]);
    const versioned = (await admin.machines.get("m-000")) as unknown as { machine: object };
    assertKeys(versioned.machine, ["createdAt", "indexes", "currentVersion"]);
  });

  test("instances of a machine and an instance's transitions", async () => {
    await admin.machines.create("counter");
    await admin.machineVersions.create("counter", {
      code: MACHINE,
      clientInfo: "1",
      makeCurrent: true,
    });
    const names = Array.from({ length: ROWS }, (_, i) => `i-${String(i).padStart(3, "0")}`);
    for (const name of names) await admin.machineInstances.create("counter", { slug: name });

    const { rows, pages } = await walk<{ slug: string; createdAt: string; status: string }>(
      "instances",
      (opts) => admin.machineInstances.list("counter", opts),
    );
    assert.equal(pages, 2);
    assert.deepEqual(
      rows.map((row) => row.slug),
      names,
    );
    for (const row of rows) {
      assertKeys(row, ["slug", "createdAt", "status", "machineVersion"]);
      assert.match(row.createdAt, ISO);
      assert.equal(row.status, "running");
    }

    for (let i = 0; i < ROWS; i++) {
      await admin.machineInstances.sendEvent("counter", "i-000", { event: { type: "bump", i } });
    }
    const history = await walk<{ createdAt: string; state: unknown; event: { i?: number } }>(
      "transitions",
      (opts) => admin.machineInstances.listTransitions("counter", "i-000", opts),
    );
    assert.equal(history.pages, 2);
    // Newest first (README), the creation's transition last.
    const sent = history.rows.map((row) => row.event.i).filter((i) => i !== undefined);
    assert.deepEqual(
      sent,
      Array.from({ length: ROWS }, (_, i) => ROWS - 1 - i),
    );
    assert.equal(history.rows.length, ROWS + 1);
    for (const row of history.rows) {
      assertKeys(row, ["createdAt", "state", "event"]);
      assert.match(row.createdAt, ISO);
    }
  });

  test("versions of a machine: oldest first, each once though several share a millisecond", async () => {
    await admin.machines.create("versioned");
    const ids: string[] = [];
    for (let i = 0; i < ROWS; i++) {
      const { machineVersionId } = await admin.machineVersions.create("versioned", {
        code: MACHINE,
        clientInfo: `v${i}`,
      });
      ids.push(machineVersionId);
    }
    const { rows, pages } = await walk<{ id: string; createdAt: string; clientInfo: string }>(
      "versions",
      (opts) => admin.machineVersions.list("versioned", opts),
    );
    assert.equal(pages, 2);
    assert.deepEqual(rows.map((row) => row.id).sort(), [...ids].sort());
    assert.equal(new Set(rows.map((row) => row.id)).size, ROWS);
    const times = rows.map((row) => row.createdAt);
    assert.deepEqual(times, [...times].sort(), "oldest first");
    for (const row of rows) {
      assertKeys(row, ["id", "createdAt", "clientInfo"]);
      assert.match(row.createdAt, ISO);
    }
  });

  test("keys, token providers and identity providers", async () => {
    const keyIds: string[] = [];
    for (let i = 0; i < ROWS; i++) {
      const { id } = await admin.keys.create({ name: `k${i}`, scopes: ["state.read"] });
      keyIds.push(id);
    }
    const keys = await walk<{ id: string; name: string; scopes: string[]; createdAt: string }>(
      "keys",
      (opts) => admin.keys.list(opts),
    );
    assert.equal(keys.pages, 2);
    assert.deepEqual(
      keys.rows
        .map((row) => row.id)
        .filter((id) => keyIds.includes(id))
        .sort(),
      [...keyIds].sort(),
    );
    assert.equal(new Set(keys.rows.map((row) => row.id)).size, keys.rows.length);
    for (const row of keys.rows) {
      assertKeys(row, ["id", "name", "scopes", "createdAt"]);
      assert.match(row.createdAt, ISO);
    }

    const services: string[] = [];
    for (let i = 0; i < ROWS; i++) {
      const service = `svc-${String(i).padStart(3, "0")}`;
      await admin.tokenProviders.upsert({
        service,
        keyId: keyIds[0]!,
        mapping: { "sub.$": "$.sub" },
      });
      services.push(service);
    }
    const providers = await walk<{ service: string; keyId: string; mapping: object }>(
      "tokenProviders",
      (opts) => admin.tokenProviders.list(opts),
    );
    assert.equal(providers.pages, 2);
    assert.deepEqual(
      providers.rows.map((row) => row.service).filter((service) => services.includes(service)),
      services,
    );
    for (const row of providers.rows) assertKeys(row, ["service", "keyId", "mapping"]);

    const secret = Buffer.from("a shared secret of enough bytes").toString("base64url");
    for (let i = 0; i < ROWS; i++) {
      await admin.identityProviders.upsert({
        // Alternately aud only and iss only: the listing's order must hold both kinds.
        ...(i % 2 === 0 ? { aud: `aud-${i}` } : { iss: `https://iss-${i}.example/` }),
        algs: ["HS256"],
        key: secret,
        mapping: { "sub.$": "$.sub" },
      });
    }
    const idps = await walk<{ aud?: string; iss?: string }>("idps", (opts) =>
      admin.identityProviders.list(opts),
    );
    assert.equal(idps.pages, 2);
    const ours = idps.rows.filter(
      (row) => row.aud?.startsWith("aud-") || row.iss?.startsWith("https://iss-"),
    );
    assert.equal(ours.length, ROWS);
    assert.equal(new Set(ours.map((row) => `${row.aud}|${row.iss}`)).size, ROWS);
    for (const row of idps.rows) {
      assertKeys(row, ["algs", "mapping"], ["aud", "iss", "jwksUrl"]);
      assert.ok(!("key" in row), "the secret key is never listed");
    }
  });

  test("orgs of the session's user", async () => {
    const created: string[] = [];
    for (let i = 0; i < ROWS; i++) {
      const { id } = await admin.orgs.create({ name: `org ${i}`, allowAnonymousAccess: false });
      created.push(id);
    }
    const orgs = await walk<{ id: string; role: string; createdAt: string; limits: object }>(
      "orgs",
      (opts) => admin.orgs.list(opts),
    );
    assert.equal(orgs.pages, 2);
    assert.equal(new Set(orgs.rows.map((row) => row.id)).size, orgs.rows.length);
    assert.deepEqual(
      orgs.rows
        .map((row) => row.id)
        .filter((id) => created.includes(id))
        .sort(),
      [...created].sort(),
    );
    for (const row of orgs.rows) {
      assertKeys(row, ["id", "name", "role", "createdAt", "limits"]);
      assertKeys(row.limits, ["monthlyEventsLimit", "monthlyReadsLimit"]);
      assert.equal(row.role, "admin");
      assert.match(row.createdAt, ISO);
    }
  });

  test("a cursor this server never gave is an invalid-parameter naming cursor", async () => {
    for (const list of [
      () => admin.machines.list({ cursor: "not-a-cursor" }),
      () => admin.machineInstances.list("counter", { cursor: "bm9wZQ" }),
      () => admin.machineVersions.list("versioned", { cursor: "e30" }),
      () => admin.keys.list({ cursor: "%%%" }),
    ]) {
      await assert.rejects(list, (error: unknown) => {
        assert.ok(error instanceof errors.ClientError, String(error));
        assert.equal(error.code, "invalid-parameter");
        return true;
      });
    }
  });
});
