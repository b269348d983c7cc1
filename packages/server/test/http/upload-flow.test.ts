// The code upload flow's bad cases, over real HTTP: the upload URL is unauthenticated, so its
// signed fields are all that stands between the internet and an org's machine code.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { StoreHolds } from "../support/held-writes.js";

const CODE = `import { createMachine } from "xstate";
export default createMachine({ initial: "a", states: { a: {} } });
export const allowRead = () => true;
export const allowWrite = () => true;`;

type Provisional = {
  machineVersionId: string;
  codeUploadUrl: string;
  codeUploadFields: Record<string, string>;
};

let api: ApiServer;
const holds = new StoreHolds();

before(async () => {
  api = await startApiServer({ wrapStore: (store) => holds.wrap(store) });
  assert.equal((await api.admin("POST", "/machines", { slug: "m" })).status, 201);
  assert.equal((await api.admin("POST", "/machines", { slug: "other" })).status, 201);
});
after(() => api.dispose());

async function provision(machine = "m"): Promise<Provisional> {
  const response = await api.admin("POST", `/machines/${machine}/v?gzip`);
  assert.equal(response.status, 200);
  return response.body as Provisional;
}

function upload(
  provisional: Provisional,
  file: Uint8Array | string,
  overrides: Record<string, string> = {},
) {
  const form = new FormData();
  for (const [name, value] of Object.entries({ ...provisional.codeUploadFields, ...overrides })) {
    form.set(name, value);
  }
  form.set("file", new Blob([file], { type: "application/javascript" }), "m.js");
  return fetch(provisional.codeUploadUrl, { method: "POST", body: form });
}

const finalize = (machine: string, signedId: string) =>
  api.admin("PUT", `/machines/${machine}/v/${signedId}`, { makeCurrent: true });

async function versionCount(machine = "m"): Promise<number> {
  return ((await api.admin("GET", `/machines/${machine}/v`)).body as { versions: unknown[] })
    .versions.length;
}

test("the upload URL is absolute, on this server, and answers with CORS", async () => {
  const provisional = await provision();
  assert.equal(new URL(provisional.codeUploadUrl).origin, api.url);
  const response = await upload(provisional, gzipSync(CODE));
  assert.equal(response.status, 204);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  const done = await finalize("m", provisional.machineVersionId);
  assert.equal(done.status, 200);
  assert.match((done.body as { machineVersionId: string }).machineVersionId, /^ver_[^.]+$/);
});

test("an upload is single use, and so is the finalize", async () => {
  const provisional = await provision();
  assert.equal((await upload(provisional, CODE)).status, 204);
  const again = await upload(provisional, CODE.replace('"a"', '"b"'));
  assert.equal(again.status, 409);
  assert.equal(((await again.json()) as { code: string }).code, "already-exists");
  assert.equal((await finalize("m", provisional.machineVersionId)).status, 200);
  const twice = await finalize("m", provisional.machineVersionId);
  assert.equal(twice.status, 409);
  assert.equal((await upload(provisional, CODE)).status, 409, "no upload after the finalize");
});

test("tampered fields, another machine or another org's id are refused and store nothing", async () => {
  const before = await versionCount();
  const provisional = await provision();
  const { key, signature } = provisional.codeUploadFields as { key: string; signature: string };
  const flipped = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
  const tamperings: Array<Record<string, string>> = [
    { signature: flipped },
    { key: key.replace("/m/", "/other/") },
    { key: key.replace(/org_[^/]+/, "org_AAAAAAAAAAAAAAAAAAAAAA") },
    { expires: String(Number(provisional.codeUploadFields.expires) + 1) },
  ];
  for (const overrides of tamperings) {
    const response = await upload(provisional, CODE, overrides);
    assert.equal(response.status, 400, JSON.stringify(overrides));
    assert.equal(((await response.json()) as { code: string }).code, "invalid-parameter");
  }
  // The signed version id is bound to its machine: finalizing it under another machine fails.
  assert.equal((await upload(provisional, CODE)).status, 204);
  const wrongMachine = await finalize("other", provisional.machineVersionId);
  assert.equal(wrongMachine.status, 400);
  const forged = provisional.machineVersionId.replace(/\.[^.]+$/, ".forged");
  assert.equal((await finalize("m", forged)).status, 400);
  assert.equal(await versionCount(), before);
  assert.equal(await versionCount("other"), 0);
});

test("a version provisioned for a deleted machine is not finalized onto one made since under its name", async () => {
  assert.equal((await api.admin("POST", "/machines", { slug: "reborn" })).status, 201);
  const provisional = await provision("reborn");
  const name = "reborn";
  const confirmation = createHmac("sha256", name).update(name).digest("base64url");
  const deleted = await api.admin("DELETE", `/machines/${name}`, {
    dangerDataWillBeDeletedForever: true,
    hmacSha256OfMachineNameWithMachineNameKey: confirmation,
  });
  assert.equal(deleted.status, 204);
  // Another machine made under the name (created in a later millisecond than the first).
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal((await api.admin("POST", "/machines", { slug: name })).status, 201);
  assert.equal((await upload(provisional, gzipSync(CODE))).status, 204);
  const response = await finalize(name, provisional.machineVersionId);
  assert.equal(response.status, 400);
  assert.equal((response.body as { parameter: string }).parameter, "machineVersionId");
  assert.equal(await versionCount(name), 0);
  // A version provisioned for the new machine goes through.
  const fresh = await provision(name);
  assert.equal((await upload(fresh, gzipSync(CODE))).status, 204);
  assert.equal((await finalize(name, fresh.machineVersionId)).status, 200);
});

test("a finalize before any upload is a 400", async () => {
  const provisional = await provision();
  const response = await finalize("m", provisional.machineVersionId);
  assert.equal(response.status, 400);
  assert.equal((response.body as { parameter: string }).parameter, "machineVersionId");
});

test("size limits: over 1 MB sent, or a gzip bomb over 10 MB unzipped, is a 413", async () => {
  const bomb = gzipSync(Buffer.alloc(11_000_000, 0x20));
  assert.ok(bomb.byteLength < 1_000_000);
  const bombed = await upload(await provision(), bomb);
  assert.equal(bombed.status, 413);
  assert.equal(((await bombed.json()) as { code: string }).code, "payload-too-large");
  const huge = await upload(await provision(), "x".repeat(1_200_000));
  assert.equal(huge.status, 413);
});

test("bytes that are not gzip nor UTF-8, and a form without a file, are 400s", async () => {
  const notUtf8 = await upload(await provision(), new Uint8Array([0xff, 0xfe, 0x00, 0x41]));
  assert.equal(notUtf8.status, 400);
  const brokenGzip = await upload(await provision(), new Uint8Array([0x1f, 0x8b, 0x08, 0x00]));
  assert.equal(brokenGzip.status, 400);
  const provisional = await provision();
  const form = new FormData();
  for (const [name, value] of Object.entries(provisional.codeUploadFields)) form.set(name, value);
  const noFile = await fetch(provisional.codeUploadUrl, { method: "POST", body: form });
  assert.equal(noFile.status, 400);
  const notAForm = await fetch(provisional.codeUploadUrl, { method: "POST", body: "{}" });
  assert.equal(notAForm.status, 400);
});

test("a machine's first version becomes current unless makeCurrent says otherwise", async () => {
  assert.equal((await api.admin("POST", "/machines", { slug: "fresh" })).status, 201);
  const first = await provision("fresh");
  assert.equal((await upload(first, CODE)).status, 204);
  const done = await api.admin("PUT", `/machines/fresh/v/${first.machineVersionId}`, {});
  const current = async () =>
    (await api.admin("GET", "/machines/fresh")).body.machine.currentVersion?.id as string;
  assert.equal(await current(), done.body.machineVersionId);
  const second = await provision("fresh");
  assert.equal((await upload(second, CODE)).status, 204);
  assert.equal(
    (await api.admin("PUT", `/machines/fresh/v/${second.machineVersionId}`, {})).status,
    200,
  );
  assert.equal(await current(), done.body.machineVersionId, "a later version is not made current");
});

test("a version keeps the index selectors it was finalized with; one finalized without takes the current's", async () => {
  const admin = (method: string, path: string, body?: unknown) => api.admin(method, path, body);
  assert.equal(
    (await admin("POST", "/machines", { slug: "indexed", indexes: ["owner"] })).status,
    201,
  );
  const selectorsOf = async (versionId: string) =>
    (await api.server.backstate.store.getMachineVersion(api.orgId, "indexed", versionId))
      ?.indexSelectors;
  const finalizeWith = async (body: object) => {
    const provisional = await provision("indexed");
    assert.equal((await upload(provisional, CODE)).status, 204);
    const done = await admin("PUT", `/machines/indexed/v/${provisional.machineVersionId}`, body);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    return done.body.machineVersionId as string;
  };
  const first = await finalizeWith({ makeCurrent: true, indexSelectors: { owner: "$.owner" } });
  assert.deepEqual(await selectorsOf(first), { owner: "$.owner" });
  const inheriting = await finalizeWith({ makeCurrent: true });
  assert.deepEqual(await selectorsOf(inheriting), { owner: "$.owner" });
  const changed = await finalizeWith({ indexSelectors: { owner: "$.public.owner" } });
  assert.deepEqual(await selectorsOf(changed), { owner: "$.public.owner" });
  // An index the machine does not declare: refused, and nothing is stored.
  const provisional = await provision("indexed");
  assert.equal((await upload(provisional, CODE)).status, 204);
  const refused = await admin("PUT", `/machines/indexed/v/${provisional.machineVersionId}`, {
    indexSelectors: { color: "$.color" },
  });
  assert.deepEqual([refused.status, refused.body.parameter], [400, "indexSelectors"]);
});

test("a first version finalized without makeCurrent does not override one made current meanwhile", async () => {
  assert.equal((await api.admin("POST", "/machines", { slug: "raced" })).status, 201);
  const heldCode = `${CODE}\n// held at its store write`;
  const held = await provision("raced");
  const fast = await provision("raced");
  assert.equal((await upload(held, heldCode)).status, 204);
  assert.equal((await upload(fast, CODE)).status, 204);
  // The held version's finalize has read the machine (no current version yet) and checked its
  // bundle; its store write waits while the other version is finalized and made current.
  const heldWrite = holds.hold("createMachineVersion", (version) => version.code === heldCode);
  const heldDone = api.admin("PUT", `/machines/raced/v/${held.machineVersionId}`, {});
  await heldWrite.reached;
  const fastDone = await finalize("raced", fast.machineVersionId);
  assert.equal(fastDone.status, 200, JSON.stringify(fastDone.body));
  heldWrite.release();
  assert.equal((await heldDone).status, 200);
  const machine = await api.admin("GET", "/machines/raced");
  assert.equal(machine.body.machine.currentVersion?.id, fastDone.body.machineVersionId);
});
