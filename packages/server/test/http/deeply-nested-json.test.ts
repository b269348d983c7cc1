// JSON nested thousands deep, in every place a caller can send JSON: it once overflowed the
// stack of recursive code behind the parser (a 500); now each is a 400 naming where it came from,
// and changes nothing. JSON nested as deep as the limit, and ordinary nesting, still works.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { MAX_CALLER_JSON_DEPTH } from "../../src/runtime/json-check.js";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { openSocket, rtUrl } from "../realtime/raw-socket.js";
import { snapshotOrg } from "./org-snapshot.js";

/** Deep enough to overflow recursive code walking it, and only ~10 KB as JSON. */
const HOSTILE_DEPTH = 4000;
const MACHINE = "wf";
const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

/** `depth` arrays one inside the other, as JSON text (JSON.stringify would overflow making it). */
const nestedText = (depth: number, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth);

/** The same as a value, for what must go through JSON.stringify (shallow enough for it). */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

let api: ApiServer;
let key: ApiKey;
let token: string;

before(async () => {
  api = await startApiServer();
  await api.deploy("workflow-v5.js", "v5-import", MACHINE);
  key = await api.createKey([
    "instances.read",
    "instances.write",
    "state.read",
    "events.write",
    "org.keys.write",
  ]);
  token = await api.tokenFor(key, { sub: "alice" });
  assert.equal((await send("POST", `/machines/${MACHINE}`, '{"slug":"existing"}')).status, 200);
});
after(() => api.dispose());

type Answer = { status: number; body: Record<string, unknown> };

async function send(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
  bearer = token,
): Promise<Answer> {
  const response = await fetch(api.url + path, {
    method,
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Sends as the admin session, in its org. */
const sendAsAdmin = (method: string, path: string, body?: string) =>
  send(method, path, body, { "x-statebacked-org-id": api.orgId }, api.adminToken);

function assertRefused(answer: Answer, parameter: string): void {
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.code, "invalid-parameter");
  assert.equal(answer.body.parameter, parameter);
  assert.match(
    String(answer.body.error),
    new RegExp(`deeper than ${MAX_CALLER_JSON_DEPTH} levels`),
  );
}

describe("deep JSON is a 400 that changes nothing", () => {
  test("a context in POST /machines/:m", async () => {
    const before = await snapshotOrg(api);
    const body = `{"slug":"deep","context":{"a":${nestedText(HOSTILE_DEPTH)}}}`;
    assertRefused(await send("POST", `/machines/${MACHINE}`, body), "body");
    assert.deepEqual(await snapshotOrg(api), before);
  });

  test("an event in POST /machines/:m/i/:i/events", async () => {
    const before = await snapshotOrg(api);
    const body = `{"event":{"type":"inc","a":${nestedText(HOSTILE_DEPTH)}}}`;
    assertRefused(await send("POST", `/machines/${MACHINE}/i/existing/events`, body), "body");
    assert.deepEqual(await snapshotOrg(api), before);
  });

  test("the x-statebacked-act header", async () => {
    const before = await snapshotOrg(api);
    const act = `{"sub":"alice","a":${nestedText(HOSTILE_DEPTH)}}`;
    const answer = await send("POST", `/machines/${MACHINE}/i/existing/events`, '{"event":"inc"}', {
      "x-statebacked-act": act,
    });
    assertRefused(answer, "x-statebacked-act");
    assert.deepEqual(await snapshotOrg(api), before);
  });

  test("the act claim of a key-signed token", async () => {
    const before = await snapshotOrg(api);
    const deepToken = await api.tokenFor(key, { sub: "alice", a: nested(HOSTILE_DEPTH) });
    const path = `/machines/${MACHINE}/i/existing/events`;
    assertRefused(await send("POST", path, '{"event":"inc"}', {}, deepToken), "token");
    // The realtime handshake verifies tokens the same way.
    await assert.rejects(openSocket(rtUrl(api.url, deepToken, api.orgId)), { status: 400 });
    assertRefused(
      await send("GET", `/machines/${MACHINE}/i/existing`, undefined, {}, deepToken),
      "token",
    );
    assert.deepEqual(await snapshotOrg(api), before);
  });

  test("a mapping in POST /idps and POST /token-providers", async () => {
    const idpsBefore = await sendAsAdmin("GET", "/idps");
    const providersBefore = await sendAsAdmin("GET", "/token-providers");
    const deepObject = '{"a":'.repeat(20_000) + "1" + "}".repeat(20_000);
    const secret = Buffer.alloc(32, 7).toString("base64url");
    const idp = `{"aud":"deep","algs":["HS256"],"key":"${secret}","mapping":{"x":${deepObject}}}`;
    assertRefused(await sendAsAdmin("POST", "/idps", idp), "body");
    const provider = `{"keyId":"${key.id}","service":"deep","mapping":{"x":${deepObject}}}`;
    assertRefused(await sendAsAdmin("POST", "/token-providers", provider), "body");
    assert.deepEqual(await sendAsAdmin("GET", "/idps"), idpsBefore);
    assert.deepEqual(await sendAsAdmin("GET", "/token-providers"), providersBefore);
  });
});

describe("JSON nested within the limit still works", () => {
  test("a body exactly at the limit is read; one level more is refused", async () => {
    // The body is one level, its context a second: the rest is the context's own nesting.
    const atLimit = `{"slug":"at-limit","context":{"a":${nestedText(MAX_CALLER_JSON_DEPTH - 2)}}}`;
    assert.equal((await send("POST", `/machines/${MACHINE}`, atLimit)).status, 200);
    const over = `{"slug":"over-limit","context":{"a":${nestedText(MAX_CALLER_JSON_DEPTH - 1)}}}`;
    assertRefused(await send("POST", `/machines/${MACHINE}`, over), "body");
  });

  test("a context, event and act nested 20 deep are kept as sent", async () => {
    let context: Record<string, unknown> = { leaf: "é🙂" };
    for (let i = 0; i < 20; i++) context = { [`level${i}`]: context, list: [i] };
    const created = await send(
      "POST",
      `/machines/${MACHINE}`,
      JSON.stringify({ slug: "nested-20", context }),
    );
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const event = { type: "inc", payload: context };
    const act = JSON.stringify({ sub: "alice", path: nested(20) });
    const sent = await send(
      "POST",
      `/machines/${MACHINE}/i/nested-20/events`,
      JSON.stringify({ event }),
      { "x-statebacked-act": act },
    );
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const nestedToken = await api.tokenFor(key, { sub: "alice", path: nested(20) });
    const read = await send("GET", `/machines/${MACHINE}/i/nested-20`, undefined, {}, nestedToken);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const admin = await api.admin("GET", `/machines/${MACHINE}/i/nested-20/admin`);
    assert.deepEqual(
      (admin.body as { context: Record<string, unknown> }).context.level19,
      context.level19,
    );
  });
});

describe("POST /tokens with a subject token whose claims nest deep", () => {
  test("is an OAuth invalid_grant, and issues no token", async () => {
    // An identity provider whose token would be exchanged, with mappings that copy the claim.
    const secret = Buffer.alloc(32, 9);
    const idp = {
      aud: "deep-claims",
      algs: ["HS256"],
      key: secret.toString("base64url"),
      mapping: { "claims.$": "$.a" },
    };
    assert.equal((await api.admin("POST", "/idps", idp)).status, 204);
    const provider = { keyId: key.id, service: "deep-claims", mapping: { "a.$": "$.claims" } };
    assert.equal((await api.admin("POST", "/token-providers", provider)).status, 204);

    for (const depth of [3000, 6000]) {
      const payload = `{"aud":"deep-claims","exp":${Math.floor(Date.now() / 1000) + 600},"a":${nestedText(depth)}}`;
      const input = [`{"alg":"HS256"}`, payload].map((p) => Buffer.from(p).toString("base64url"));
      const signature = createHmac("sha256", secret).update(input.join(".")).digest("base64url");
      const form = new URLSearchParams({
        grant_type: GRANT,
        audience: `https://tokens.statebacked.dev/${api.orgId}/deep-claims`,
        subject_token: `${input.join(".")}.${signature}`,
      });
      const response = await fetch(`${api.url}/tokens`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
      });
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(response.status, 403, JSON.stringify(body).slice(0, 300));
      assert.equal(body.error, "invalid_grant");
      assert.equal(body.code, "token-claim-invalid");
      assert.match(String(body.error_description), /deeper than/);
    }
  });
});
