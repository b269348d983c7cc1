// POST /tokens checked the subject token's nesting (128 levels, as for any JSON from a caller) but
// not the claims its mappings make of it, which nest deeper: each mapping may wrap a selected
// value in up to seven more objects. A subject token 120 levels deep came back as a token whose
// act nests past 128, which the Authenticator refuses on every request (400, parameter token).
// The exchange now refuses such claims, as it refuses those too large, instead of issuing them.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { setUpHs256Exchange, signSubjectToken } from "../support/hs256-exchange.js";

const SERVICE = "nested";

let api: ApiServer;

before(async () => {
  api = await startApiServer();
  await setUpHs256Exchange(api, {
    service: SERVICE,
    scopes: ["state.read"],
    idpMapping: { "sub.$": "$.sub", "profile.$": "$.profile" },
    // The profile, seven objects deeper than it came.
    providerMapping: {
      "sub.$": "$.sub",
      a: { b: { c: { d: { e: { f: { "profile.$": "$.profile" } } } } } },
    },
  });
});
after(() => api.dispose());

test("claims nested too deep for a request are refused, not issued unusable", async () => {
  let profile: unknown = "deep";
  for (let level = 0; level < 125; level++) profile = { inner: profile };
  const subjectToken = await signSubjectToken({ sub: "u1", profile });
  const answer = await api.exchangeToken(SERVICE, subjectToken);
  if (answer.status === 200) {
    // What the bug did: a token no request can use.
    const used = await fetch(`${api.url}/machines`, {
      headers: { authorization: `Bearer ${answer.body.access_token}` },
    });
    assert.fail(`issued a token the API answers ${used.status}: ${await used.text()}`);
  }
  assert.equal(answer.status, 403, JSON.stringify(answer.body));
  assert.equal(answer.body.error, "invalid_grant");
  assert.equal(answer.body.code, "token-claim-invalid");
});
