// Text the store cannot keep as given: U+0000 (PostgreSQL's text refuses it, SQLite's keeps it),
// lone surrogates (both stores would write U+FFFD instead), and an identity provider's aud and
// iss too long in UTF-8 bytes for PostgreSQL's primary key index. Each once reached the store (a
// 503 on PostgreSQL, or silently changed text); now each is a 400 naming the parameter, on both
// stores alike, and changes nothing. Unicode that can be stored still comes back as it was sent.
// unstorable-text-postgres.test.ts runs these tests on PostgreSQL.
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ANONYMOUS_SERVICE } from "../../src/auth/token-exchange/anonymous.js";
import { MAX_KEY_TEXT_BYTES } from "../../src/store/stored-text.js";
import { startApiServer, type ApiResponse, type ApiServer } from "../support/api-server.js";
import { snapshotOrg } from "./org-snapshot.js";

const MACHINE = "wf";
const SECRET = Buffer.alloc(32, 5).toString("base64url");
/** Each cannot be stored: a NUL, lone surrogates (high, low, and a pair in the wrong order). */
const UNSTORABLE = ["a\u0000b", "\u0000", "a\ud800b", "\udfff", "\udc00\ud800"];
const UNICODE = "clé 名前 🙂 👩‍👩‍👧‍👦 e\u0301 \u202e\u0001";

let api: ApiServer;

before(async () => {
  api = await startApiServer();
  await api.deploy("workflow-v5.js", "v5-import", MACHINE);
});
after(() => api.dispose());

/** What these tests may change: the org's keys, orgs, machines, versions, and its providers. */
async function everything(): Promise<unknown> {
  return {
    org: await snapshotOrg(api),
    idps: (await api.admin("GET", "/idps")).body,
    tokenProviders: (await api.admin("GET", "/token-providers")).body,
  };
}

/** Runs `requests`, asserting each is a 400 naming `parameter`, and that nothing changed. */
async function assertRefused(
  parameter: string,
  requests: Array<() => Promise<ApiResponse>>,
): Promise<void> {
  const before = await everything();
  for (const [i, request] of requests.entries()) {
    const answer = await request();
    const said = `${parameter} #${i}: ${JSON.stringify(answer.body)}`;
    assert.equal(answer.status, 400, said);
    assert.equal(answer.body.code, "invalid-parameter", said);
    assert.equal(answer.body.parameter, parameter, said);
  }
  assert.deepEqual(await everything(), before);
}

/** `count` characters of U+0400–U+07FF (two UTF-8 bytes each), random so nothing compresses. */
function twoByteText(count: number): string {
  return Array.from({ length: count }, () => String.fromCharCode(randomInt(0x400, 0x800))).join("");
}

const cursor = (position: unknown) => Buffer.from(JSON.stringify(position)).toString("base64url");

/** The least a bundle needs to be finalized as a version. */
const MACHINE_CODE =
  'import { createMachine } from "xstate"; export default createMachine({}); ' +
  "export const allowRead = () => true; export const allowWrite = () => true;";

/** A provisional version of the machine with its code uploaded: answers its signed id. */
function uploadedVersion(
  code: string | Uint8Array = MACHINE_CODE,
): Promise<{ signedId: string; upload: Response }> {
  return api.uploadVersion(MACHINE, code);
}

describe("text that cannot be stored is a 400 naming it, on every store", () => {
  test("a key's name", async () => {
    await assertRefused(
      "name",
      UNSTORABLE.map((name) => () => api.admin("POST", "/keys", { name, scopes: ["state.read"] })),
    );
  });

  test("an org's name", async () => {
    await assertRefused(
      "name",
      UNSTORABLE.map((name) => () => api.admin("POST", "/orgs", { name })),
    );
  });

  test("an identity provider's aud and iss, saved or deleted", async () => {
    const idp = { algs: ["HS256"], key: SECRET, mapping: {} };
    await assertRefused(
      "aud",
      UNSTORABLE.flatMap((aud) => [
        () => api.admin("POST", "/idps", { ...idp, aud }),
        () => api.admin("DELETE", "/idps", { aud }),
      ]),
    );
    await assertRefused(
      "iss",
      UNSTORABLE.flatMap((iss) => [
        () => api.admin("POST", "/idps", { ...idp, aud: "ok", iss }),
        () => api.admin("DELETE", "/idps", { aud: "ok", iss }),
      ]),
    );
  });

  test("an identity provider's aud and iss beyond the key's bytes, though within 1024 characters", async () => {
    const idp = { algs: ["HS256"], key: SECRET, mapping: {} };
    const cjk = () => twoByteText(1024);
    await assertRefused("aud", [
      () => api.admin("POST", "/idps", { ...idp, aud: cjk(), iss: cjk() }),
      () => api.admin("POST", "/idps", { ...idp, aud: "漢".repeat(342) }),
    ]);
    await assertRefused("iss", [
      () => api.admin("POST", "/idps", { ...idp, iss: twoByteText(MAX_KEY_TEXT_BYTES / 2 + 1) }),
    ]);
  });

  test("an identity provider's jwksUrl", async () => {
    const idp = { aud: "jwks", algs: ["RS256"], mapping: {} };
    await assertRefused(
      "jwksUrl",
      UNSTORABLE.map(
        (text) => () =>
          api.admin("POST", "/idps", { ...idp, jwksUrl: `https://a.example/${text}` }),
      ),
    );
  });

  test("a version's clientInfo", async () => {
    const { signedId, upload } = await uploadedVersion();
    assert.equal(upload.status, 204);
    await assertRefused(
      "clientInfo",
      UNSTORABLE.map(
        (clientInfo) => () =>
          api.admin("PUT", `/machines/${MACHINE}/v/${signedId}`, {
            clientInfo,
            makeCurrent: false,
          }),
      ),
    );
  });

  test("a bundle holding a NUL", async () => {
    const { upload } = await uploadedVersion(new Uint8Array([0x2f, 0x2f, 0x00, 0x0a, 0x31]));
    const body = (await upload.json()) as { code: string; parameter: string };
    assert.equal(upload.status, 400, JSON.stringify(body));
    assert.equal(body.code, "invalid-parameter");
    assert.equal(body.parameter, "file");
  });

  test("a cursor of any listing", async () => {
    const strings = UNSTORABLE.map(cursor);
    const pairs = UNSTORABLE.flatMap((text) => [
      cursor({ aud: text, iss: "" }),
      cursor({ aud: "", iss: text }),
    ]);
    const versions = UNSTORABLE.map((id) => cursor({ createdAt: 1, id }));
    await assertRefused("cursor", [
      ...strings.map((c) => () => api.admin("GET", `/keys?cursor=${c}`)),
      ...strings.map((c) => () => api.admin("GET", `/orgs?cursor=${c}`)),
      ...strings.map((c) => () => api.admin("GET", `/token-providers?cursor=${c}`)),
      ...strings.map((c) => () => api.admin("GET", `/machines?cursor=${c}`)),
      ...strings.map((c) => () => api.admin("GET", `/machines/${MACHINE}/i?cursor=${c}`)),
      ...pairs.map((c) => () => api.admin("GET", `/idps?cursor=${c}`)),
      ...versions.map((c) => () => api.admin("GET", `/machines/${MACHINE}/v?cursor=${c}`)),
    ]);
  });
});

describe("POST /tokens with a subject token whose aud or iss cannot be stored", () => {
  /** An exchange for the org's anonymous service; the token's signature is never checked. */
  async function exchange(claims: Record<string, unknown>): Promise<ApiResponse> {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const payload = { exp: Math.floor(Date.now() / 1000) + 600, ...claims };
    const subjectToken = `${encode({ alg: "HS256" })}.${encode(payload)}.${"A".repeat(43)}`;
    return api.exchangeToken(ANONYMOUS_SERVICE, subjectToken);
  }

  test("is an OAuth invalid_grant, before any identity provider is looked up", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      ...UNSTORABLE.map((aud): [Record<string, unknown>, string] => [
        { aud },
        "token-audience-invalid",
      ]),
      ...UNSTORABLE.map((aud): [Record<string, unknown>, string] => [
        { aud: ["ok", aud] },
        "token-audience-invalid",
      ]),
      ...UNSTORABLE.map((iss): [Record<string, unknown>, string] => [
        { aud: "ok", iss },
        "token-claim-invalid",
      ]),
      [{ aud: twoByteText(MAX_KEY_TEXT_BYTES) }, "token-audience-invalid"],
    ];
    for (const [claims, code] of cases) {
      const answer = await exchange(claims);
      const said = JSON.stringify(answer.body);
      assert.equal(answer.status, 403, said);
      assert.equal(answer.body.error, "invalid_grant", said);
      assert.equal(answer.body.code, code, said);
    }
    // Text that can be stored is looked up as before: no identity provider has it.
    const unknown = await exchange({ aud: UNICODE, iss: UNICODE });
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.code, "identity-provider-not-found");
  });
});

describe("Unicode that can be stored comes back as it was sent", () => {
  test("names of keys and orgs", async () => {
    const key = await api.admin("POST", "/keys", { name: UNICODE, scopes: ["state.read"] });
    assert.equal(key.status, 200, JSON.stringify(key.body));
    const keys = (await api.admin("GET", "/keys")).body.keys as Array<{ id: string; name: string }>;
    assert.equal(keys.find((listed) => listed.id === key.body.id)?.name, UNICODE);

    const org = await api.admin("POST", "/orgs", { name: UNICODE, allowAnonymousAccess: false });
    assert.equal(org.status, 200, JSON.stringify(org.body));
    const orgs = (await api.admin("GET", "/orgs")).body.orgs as Array<{ id: string; name: string }>;
    assert.equal(orgs.find((listed) => listed.id === org.body.id)?.name, UNICODE);
  });

  test("an identity provider's aud and iss of MAX_KEY_TEXT_BYTES each", async () => {
    const aud = twoByteText(MAX_KEY_TEXT_BYTES / 2);
    const iss = `${UNICODE}${twoByteText(200)}`;
    const saved = await api.admin("POST", "/idps", {
      aud,
      iss,
      algs: ["HS256"],
      key: SECRET,
      mapping: {},
    });
    assert.equal(saved.status, 204, JSON.stringify(saved.body));
    const idps = (await api.admin("GET", "/idps")).body.idps as Array<{
      aud?: string;
      iss?: string;
    }>;
    assert.ok(idps.some((idp) => idp.aud === aud && idp.iss === iss));
    assert.equal((await api.admin("DELETE", "/idps", { aud, iss })).status, 204);
  });

  test("a version's clientInfo", async () => {
    const { signedId } = await uploadedVersion();
    const finalized = await api.admin("PUT", `/machines/${MACHINE}/v/${signedId}`, {
      clientInfo: UNICODE,
      makeCurrent: false,
    });
    assert.equal(finalized.status, 200, JSON.stringify(finalized.body));
    const versions = (await api.admin("GET", `/machines/${MACHINE}/v`)).body.versions as Array<{
      id: string;
      clientInfo: string;
    }>;
    assert.equal(
      versions.find((v) => v.id === finalized.body.machineVersionId)?.clientInfo,
      UNICODE,
    );
  });

  test("cursors of ordinary text are read as positions", async () => {
    for (const path of [
      `/keys?cursor=${cursor("sbk_")}`,
      `/orgs?cursor=${cursor("org_")}`,
      `/token-providers?cursor=${cursor("a")}`,
      `/idps?cursor=${cursor({ aud: "", iss: UNICODE })}`,
      `/machines/${MACHINE}/v?cursor=${cursor({ createdAt: 0, id: "ver_a" })}`,
    ]) {
      assert.equal((await api.admin("GET", path)).status, 200, path);
    }
  });
});
