// POST /tokens named every failed check of a subject token's exp "no exp claim" and of its nbf
// "not valid yet", whatever failed: an exp given as a string was reported missing, and an nbf
// that is not a number (a token that can never become valid) as one to try again later. Such
// claims are now refused as the invalid claims they are (token-claim-invalid).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SignJWT, type JWTPayload } from "jose";
import { startApiServer, type ApiServer } from "../support/api-server.js";

const IDP_SECRET = Buffer.from("an HS256 secret shared with the identity provider");
const IDP_ISSUER = "https://login.example.test/";
const SERVICE = "clock";

let api: ApiServer;

before(async () => {
  api = await startApiServer();
  const key = await api.createKey(["state.read"]);
  const idp = await api.admin("POST", "/idps", {
    iss: IDP_ISSUER,
    algs: ["HS256"],
    key: IDP_SECRET.toString("base64url"),
    mapping: { "sub.$": "$.sub" },
  });
  assert.equal(idp.status, 204, JSON.stringify(idp.body));
  const provider = await api.admin("POST", "/token-providers", {
    service: SERVICE,
    keyId: key.id,
    mapping: { "sub.$": "$.sub" },
  });
  assert.equal(provider.status, 204, JSON.stringify(provider.body));
});
after(() => api.dispose());

const sign = (claims: JWTPayload) =>
  new SignJWT({ iss: IDP_ISSUER, sub: "u1", ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .sign(IDP_SECRET);

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
