// POST /tokens named every failed check of a subject token's exp "no exp claim" and of its nbf
// "not valid yet", whatever failed: an exp given as a string was reported missing, and an nbf
// that is not a number (a token that can never become valid) as one to try again later. Such
// claims are now refused as the invalid claims they are (token-claim-invalid).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { JWTPayload } from "jose";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { setUpHs256Exchange, signSubjectToken } from "../support/hs256-exchange.js";

const SERVICE = "clock";

let api: ApiServer;

before(async () => {
  api = await startApiServer();
  const mapping = { "sub.$": "$.sub" };
  await setUpHs256Exchange(api, {
    service: SERVICE,
    scopes: ["state.read"],
    idpMapping: mapping,
    providerMapping: mapping,
  });
});
after(() => api.dispose());

// Only the time claims given: a missing exp is one of the cases.
const sign = (claims: JWTPayload) => signSubjectToken({ sub: "u1", exp: undefined, ...claims });

test("an exp or nbf that is not a number is an invalid claim, not a missing or early one", async () => {
  const inAnHour = Math.floor(Date.now() / 1000) + 3600;
  for (const [claims, code] of [
    [{ exp: String(inAnHour) }, "token-claim-invalid"],
    [{ exp: inAnHour, nbf: "soon" }, "token-claim-invalid"],
    // The checks themselves still answer what they always did.
    [{}, "token-expiry-missing"],
    [{ exp: inAnHour, nbf: inAnHour }, "token-not-yet-valid"],
  ] as const) {
    const answer = await api.exchangeToken(SERVICE, await sign(claims as JWTPayload));
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.code, code, JSON.stringify(claims));
  }
});
