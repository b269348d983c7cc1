// The token exchange as its tests set it up: an identity provider that signs its tokens with a
// shared HS256 secret, and a token provider of one service that maps what it says into tokens of
// an org key.
import assert from "node:assert/strict";
import { SignJWT, type JWTPayload } from "jose";
import type { Scope } from "../../src/auth/scopes.js";
import type { ApiServer } from "./api-server.js";

const IDP_SECRET = Buffer.from("an HS256 secret shared with the identity provider");
const IDP_ISSUER = "https://login.example.test/";

export async function setUpHs256Exchange(
  api: ApiServer,
  options: {
    service: string;
    scopes: readonly Scope[];
    idpMapping: Record<string, unknown>;
    providerMapping: Record<string, unknown>;
    /** The identity provider's issuer, when a test sets up more than one. */
    issuer?: string;
  },
): Promise<void> {
  const key = await api.createKey(options.scopes);
  const idp = await api.admin("POST", "/idps", {
    iss: options.issuer ?? IDP_ISSUER,
    algs: ["HS256"],
    key: IDP_SECRET.toString("base64url"),
    mapping: options.idpMapping,
  });
  assert.equal(idp.status, 204, JSON.stringify(idp.body));
  const provider = await api.admin("POST", "/token-providers", {
    service: options.service,
    keyId: key.id,
    mapping: options.providerMapping,
  });
  assert.equal(provider.status, 204, JSON.stringify(provider.body));
}

/**
 * A token of the identity provider: its issuer, an exp 10 minutes on, and `claims` over them (an
 * `iss` among them names another provider set up with `issuer`).
 */
export function signSubjectToken(claims: JWTPayload): Promise<string> {
  const exp = Math.floor(Date.now() / 1000) + 600;
  return new SignJWT({ iss: IDP_ISSUER, exp, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .sign(IDP_SECRET);
}
