// POST /tokens bounded the mapped claims by their JSON length, but the issued token writes every
// non-ASCII character as a six-character \u escape (so the official client can read it with
// atob): a subject token of 8 KB whose name was in CJK came back as a 16 KB token, which no
// request can carry (node answers 431 past 16 KiB of headers). The bound now applies to the
// claims as the token writes them, so every token the exchange grants can be used.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startApiServer, type ApiResponse, type ApiServer } from "../support/api-server.js";
import { setUpHs256Exchange, signSubjectToken } from "../support/hs256-exchange.js";

const SERVICE = "named";
const MACHINE = "wf";

let api: ApiServer;

before(async () => {
  api = await startApiServer();
  await api.deploy("workflow-v5.js", "v5-import", MACHINE);
  const mapping = { "sub.$": "$.sub", "name.$": "$.name" };
  await setUpHs256Exchange(api, {
    service: SERVICE,
    scopes: ["instances.write", "state.read"],
    idpMapping: mapping,
    providerMapping: mapping,
  });
});
after(() => api.dispose());

/** Exchanges an identity provider token for a user with this name. */
async function exchange(name: string): Promise<ApiResponse> {
  return api.exchangeToken(SERVICE, await signSubjectToken({ sub: "u1", name }));
}

/** Creates an instance with the token: the status answered. */
async function use(token: string, slug: string): Promise<number> {
  const response = await fetch(`${api.url}/machines/${MACHINE}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ slug }),
  });
  await response.arrayBuffer();
  return response.status;
}

test("claims too large once escaped in the token are refused, not issued unusable", async () => {
  // 6 KB of UTF-8, 2,000 characters of JSON: 12,000 once escaped.
  const refused = await exchange("漢".repeat(2000));
  assert.equal(refused.status, 403, JSON.stringify(refused.body).slice(0, 300));
  assert.equal(refused.body.code, "claims-too-large");
  assert.equal(refused.body.access_token, undefined);
});

test("every token granted can be used, ASCII or not, up to the bound", async () => {
  for (const [slug, name] of [
    ["cjk", "漢".repeat(1300)],
    ["ascii", "a".repeat(8000)],
  ] as const) {
    const granted = await exchange(name);
    assert.equal(granted.status, 200, JSON.stringify(granted.body).slice(0, 300));
    assert.equal(await use(granted.body.access_token, slug), 200, slug);
  }
});
