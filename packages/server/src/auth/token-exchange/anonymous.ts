// Anonymous sessions (State Backed's `anonymous: { orgId }` client option). The official client
// signs its own identity token: HS256 keyed by the UTF-8 bytes of the org id, with aud = iss =
// https://<orgId>.anonymous.auth.statebacked.dev and claims `sid` and `did`; then it exchanges
// that token with the token provider `anonymous-statebacked-dev`.
//
// On the server these are ordinary rows, created with the org (unless it asks for no anonymous
// access): a key with the production scopes, an identity provider for that audience whose key is
// the org id, and the token provider, which map to exactly { sid, did, auth: "anonymous" }. So
// admins see (and can delete, or re-create) the rows through the usual endpoints, and deleting the
// key revokes every anonymous token at once.
//
// The exchange has one special case (isAnonymous, anonymousClaims): anyone can sign such a token,
// since the org id is public, so State Backed's promise that anonymous tokens carry nothing but
// sid, did and auth "anonymous" cannot rest on the rows' mappings, which an admin may change, nor
// on the service asked for: its tokens go to the anonymous service only, and come out as exactly
// those claims whatever the mappings say.
import { generateKey } from "@backstate/token";
import type { JsonObject } from "../../runtime/adapter-protocol.js";
import type { EpochMs, IdentityProviderRecord, Store } from "../../store/store.js";
import { KEY_PRESETS } from "../scopes.js";

export const ANONYMOUS_SERVICE = "anonymous-statebacked-dev";

/** The audience and issuer of an org's self-signed anonymous tokens. */
export function anonymousAudience(orgId: string): string {
  return `https://${orgId}.anonymous.auth.statebacked.dev`;
}

/** Creates the key, identity provider and token provider that let `orgId` take anonymous sessions. */
export async function provisionAnonymousAccess(
  store: Store,
  orgId: string,
  now: EpochMs,
): Promise<{ keyId: string }> {
  const { stateBackedKeyId: keyId, stateBackedSecretKey: secret } = generateKey();
  await store.createKey({
    id: keyId,
    orgId,
    name: "anonymous sessions",
    secret,
    scopes: [...KEY_PRESETS.production],
    createdAt: now,
  });
  const audience = anonymousAudience(orgId);
  await store.upsertIdentityProvider({
    orgId,
    aud: audience,
    iss: audience,
    algs: ["HS256"],
    key: Buffer.from(orgId, "utf8").toString("base64url"),
    jwksUrl: undefined,
    mapping: { "sid.$": "$.sid", "did.$": "$.did" },
    grantableScopes: [...KEY_PRESETS.production],
    createdAt: now,
    updatedAt: now,
  });
  await store.upsertTokenProvider({
    orgId,
    service: ANONYMOUS_SERVICE,
    keyId,
    mapping: { "sid.$": "$.sid", "did.$": "$.did", auth: "anonymous" },
    createdAt: now,
    updatedAt: now,
  });
  return { keyId };
}

/**
 * Whether `idp` vouches for anonymous sessions: it names the org's anonymous audience or issuer,
 * or its secret is the org id (public, so whoever holds it proves nothing).
 */
export function isAnonymous(orgId: string, idp: IdentityProviderRecord): boolean {
  const audience = anonymousAudience(orgId);
  return (
    idp.aud === audience ||
    idp.iss === audience ||
    (idp.key !== undefined && Buffer.from(idp.key, "base64url").toString("utf8") === orgId)
  );
}

/** An anonymous session's claims: the mapped sid and did when they are strings, and auth. */
export function anonymousClaims(mapped: JsonObject): JsonObject {
  const { sid, did } = mapped;
  return {
    ...(typeof sid === "string" ? { sid } : {}),
    ...(typeof did === "string" ? { did } : {}),
    auth: "anonymous",
  };
}
