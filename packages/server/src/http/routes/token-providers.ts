// Token providers: a service name, the org key whose scopes (and signature) the exchanged tokens
// carry, and the mapping from the identity provider's claims to the tokens' `act`. Since a token
// provider can mint tokens with its key's scopes, only a caller holding all of them may name it.
import { z } from "zod";
import { checkMapping } from "../../auth/token-exchange/mapping.js";
import { ForbiddenError, NotFoundError } from "../../errors.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { route } from "../route.js";
import { CursorQuery, JsonObjectSchema, Name } from "../schemas.js";

const UpsertTokenProviderBody = z.object({
  keyId: z.string().regex(/^sbk_[A-Za-z0-9_-]{1,64}$/, { message: "must be a key id (sbk_…)" }),
  service: Name,
  mapping: JsonObjectSchema,
});

export const tokenProviderRoutes = [
  route<undefined, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/token-providers",
    summary: "List the org's token providers",
    access: { kind: "org", anyScope: ["tokens.admin"] },
    query: CursorQuery,
    status: 200,
    async handle({ principal, query, services }) {
      const after = decodeCursor(query.cursor, Name);
      const rows = await services.store.listTokenProviders(principal.orgId, {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (provider) => provider.service,
        (provider) => ({
          service: provider.service,
          keyId: provider.keyId,
          mapping: provider.mapping,
        }),
      );
      return { tokenProviders: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<undefined, undefined, z.infer<typeof UpsertTokenProviderBody>>({
    method: "POST",
    path: "/token-providers",
    summary:
      "Create or update the token provider for a service: the key its tokens are signed with " +
      "(and get the scopes of), and the mapping that makes their claims",
    access: { kind: "org", anyScope: ["tokens.admin"] },
    body: UpsertTokenProviderBody,
    status: 204,
    async handle({ principal, body, services }) {
      const key = await services.store.getKey(body.keyId);
      if (key === undefined || key.orgId !== principal.orgId) {
        throw new NotFoundError(`key ${body.keyId} not found`);
      }
      const beyond = key.scopes.filter(
        (scope) => !(principal.scopes as ReadonlySet<string>).has(scope),
      );
      if (beyond.length > 0) {
        throw new ForbiddenError(
          "missing-scope",
          `tokens of this provider would hold ${beyond.join(", ")}, which you do not hold`,
        );
      }
      checkMapping(body.mapping);
      const now = services.clock.now();
      await services.store.upsertTokenProvider({
        orgId: principal.orgId,
        service: body.service,
        keyId: key.id,
        mapping: body.mapping,
        createdAt: now,
        updatedAt: now,
      });
    },
  }),

  route<{ service: string }>({
    method: "DELETE",
    path: "/token-providers/:service",
    summary: "Delete a token provider: its service stops exchanging at once",
    access: { kind: "org", anyScope: ["tokens.admin"] },
    params: z.object({ service: Name }),
    status: 204,
    async handle({ principal, params, services }) {
      if (!(await services.store.deleteTokenProvider(principal.orgId, params.service))) {
        throw new NotFoundError(`token provider ${params.service} not found`);
      }
    },
  }),
];
