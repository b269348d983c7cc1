// Identity providers: whose tokens an org accepts for token exchange, each identified by its
// (aud, iss) pair. Upserts check everything an exchange will rely on: the algorithms against the
// kind of key (a shared secret verifies HS* only, a JWKS the others only), the JWKS URL against
// the server's fetch policy, and the mapping. The secret key is never listed. An upsert records the
// caller's scopes as the most the provider's tokens can be exchanged for (see TokenExchange): its
// secret and mapping decide who a token speaks for, so it must not outrank whoever set them.
import { z } from "zod";
import { isHmacAlgorithm, SIGNING_ALGORITHMS } from "../../auth/token-exchange/algorithms.js";
import { checkMapping } from "../../auth/token-exchange/mapping.js";
import { InvalidParameterError, NotFoundError } from "../../errors.js";
import type { IdentityProviderRecord } from "../../store/store.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { route } from "../route.js";
import { CursorQuery, JsonObjectSchema, KeyColumnText, StoredText } from "../schemas.js";
import { tokenExchangeOf } from "./tokens.js";

/** The shortest HMAC secret accepted, in bytes (an anonymous-session org id is 26). */
const MIN_KEY_BYTES = 16;

// aud and iss are the key of an identity provider: bounded in bytes too (see KeyColumnText).
const IdpId = z.object({
  aud: KeyColumnText.min(1).max(1024).optional(),
  iss: KeyColumnText.min(1).max(1024).optional(),
});

const UpsertIdpBody = IdpId.extend({
  algs: z.array(z.enum(SIGNING_ALGORITHMS)).min(1).max(32),
  mapping: JsonObjectSchema,
  key: z
    .string()
    .max(4096)
    .regex(/^[A-Za-z0-9_\-+/]+={0,2}$/, { message: "must be base64url" })
    .optional(),
  jwksUrl: StoredText.min(1).max(2048).optional(),
});

// "" stands for an absent aud or iss.
const Position = z.object({ aud: KeyColumnText, iss: KeyColumnText });

type IdpIdBody = z.infer<typeof IdpId>;

function requireAudOrIss(body: IdpIdBody): void {
  if (body.aud === undefined && body.iss === undefined) {
    throw new InvalidParameterError("aud", "give the identity provider's aud, iss, or both");
  }
}

function wireIdp(idp: IdentityProviderRecord) {
  return {
    ...(idp.aud !== undefined ? { aud: idp.aud } : {}),
    ...(idp.iss !== undefined ? { iss: idp.iss } : {}),
    algs: idp.algs,
    ...(idp.jwksUrl !== undefined ? { jwksUrl: idp.jwksUrl } : {}),
    mapping: idp.mapping,
  };
}

export const identityProviderRoutes = [
  route<undefined, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/idps",
    summary: "List the org's identity providers (never their secret keys)",
    access: { kind: "org", anyScope: ["tokens.admin"] },
    query: CursorQuery,
    status: 200,
    async handle({ principal, query, services }) {
      const after = decodeCursor(query.cursor, Position);
      const rows = await services.store.listIdentityProviders(principal.orgId, {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (idp) => ({ aud: idp.aud ?? "", iss: idp.iss ?? "" }),
        wireIdp,
      );
      return { idps: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<undefined, undefined, z.infer<typeof UpsertIdpBody>>({
    method: "POST",
    path: "/idps",
    summary:
      "Create or update the identity provider with this aud and/or iss: algs, a base64url " +
      "secret key (HS*) or a jwksUrl (RS*, PS*, ES*, EdDSA), and a claims mapping",
    access: { kind: "org", anyScope: ["tokens.admin"] },
    body: UpsertIdpBody,
    status: 204,
    async handle({ principal, body, services }) {
      requireAudOrIss(body);
      if ((body.key === undefined) === (body.jwksUrl === undefined)) {
        throw new InvalidParameterError(
          "key",
          "give exactly one of key (a shared secret, for HS256/384/512) and jwksUrl (for the " +
            "other algorithms)",
        );
      }
      const algs = [...new Set(body.algs)];
      if (body.key !== undefined) {
        const asymmetric = algs.filter((alg) => !isHmacAlgorithm(alg));
        if (asymmetric.length > 0) {
          throw new InvalidParameterError(
            "algs",
            `a key (a shared secret) verifies HS256, HS384 and HS512 only; ` +
              `${asymmetric.join(", ")} need a jwksUrl instead`,
          );
        }
        if (Buffer.from(body.key, "base64url").length < MIN_KEY_BYTES) {
          throw new InvalidParameterError(
            "key",
            `key must be at least ${MIN_KEY_BYTES} bytes once base64url-decoded`,
          );
        }
      } else {
        const symmetric = algs.filter(isHmacAlgorithm);
        if (symmetric.length > 0) {
          throw new InvalidParameterError(
            "algs",
            `${symmetric.join(", ")} need a key (a shared secret), not a jwksUrl`,
          );
        }
      }
      checkMapping(body.mapping);
      const jwksUrl =
        body.jwksUrl === undefined
          ? undefined
          : await tokenExchangeOf(services).checkJwksUrl(body.jwksUrl);
      const now = services.clock.now();
      await services.store.upsertIdentityProvider({
        orgId: principal.orgId,
        aud: body.aud,
        iss: body.iss,
        algs,
        key: body.key,
        jwksUrl,
        mapping: body.mapping,
        grantableScopes: [...principal.scopes].sort(),
        createdAt: now,
        updatedAt: now,
      });
    },
  }),

  route<undefined, undefined, IdpIdBody>({
    method: "DELETE",
    path: "/idps",
    summary:
      "Delete the identity provider with exactly this aud and/or iss: its tokens stop " +
      "exchanging at once",
    access: { kind: "org", anyScope: ["tokens.admin"] },
    body: IdpId,
    status: 204,
    async handle({ principal, body, services }) {
      requireAudOrIss(body);
      const deleted = await services.store.deleteIdentityProvider(principal.orgId, {
        aud: body.aud,
        iss: body.iss,
      });
      if (!deleted) throw new NotFoundError("no identity provider with that aud and iss");
    },
  }),
];
