// Org keys: the secrets apps sign end-user tokens with. A key's secret is shown once, at creation.
import { generateKey } from "@backstate/token";
import { z } from "zod";
import { ForbiddenError, InvalidParameterError, NotFoundError } from "../../errors.js";
import { KEY_PRESETS, type Scope } from "../../auth/scopes.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { route } from "../route.js";
import { CursorQuery, ScopeSchema, StoredText } from "../schemas.js";
import { isoDate } from "../wire.js";

const CreateKeyBody = z.object({
  name: StoredText.min(1).max(256),
  scopes: z.array(ScopeSchema).min(1).max(64).optional(),
  use: z.enum(["production", "ci"]).optional(),
});

export const keyRoutes = [
  route<undefined, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/keys",
    summary: "List the org's keys (never their secrets)",
    // Per the published spec: listing keys needs tokens.admin, creating them org.keys.write.
    access: { kind: "org", anyScope: ["tokens.admin"] },
    query: CursorQuery,
    status: 200,
    async handle({ principal, query, services }) {
      const after = decodeCursor(query.cursor, StoredText);
      const rows = await services.store.listKeys(principal.orgId, {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (key) => key.id,
        (key) => ({
          id: key.id,
          name: key.name,
          scopes: key.scopes,
          createdAt: isoDate(key.createdAt),
        }),
      );
      return { keys: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<undefined, undefined, z.infer<typeof CreateKeyBody>>({
    method: "POST",
    path: "/keys",
    summary:
      "Create a key with scopes or a preset (`production`, `ci`; scopes win when both come); answers its secret once",
    access: { kind: "org", anyScope: ["org.keys.write"] },
    body: CreateKeyBody,
    status: 200,
    async handle({ principal, body, services }) {
      // Scopes win over a preset given with them: smply sends its default `use: "production"`
      // along with every --scopes (cli-client.md §3), and means the scopes.
      const chosen = body.scopes ?? (body.use === undefined ? undefined : KEY_PRESETS[body.use]);
      if (chosen === undefined) throw new InvalidParameterError("scopes", "give scopes or use");
      const scopes: Scope[] = [...new Set(chosen)];
      // A key may hand on only what it holds itself; otherwise org.keys.write would grant all.
      const beyond = scopes.filter((scope) => !principal.scopes.has(scope));
      if (beyond.length > 0) {
        throw new ForbiddenError(
          "missing-scope",
          `you cannot grant scopes you do not hold: ${beyond.join(", ")}`,
        );
      }
      const { stateBackedKeyId: id, stateBackedSecretKey: secret } = generateKey();
      await services.store.createKey({
        id,
        orgId: principal.orgId,
        name: body.name,
        secret,
        scopes,
        createdAt: services.clock.now(),
      });
      return { id, key: secret };
    },
  }),

  route<{ keyId: string }>({
    method: "DELETE",
    path: "/keys/:keyId",
    summary: "Delete a key: tokens signed with it stop verifying at once",
    access: { kind: "org", anyScope: ["org.keys.write"] },
    params: z.object({ keyId: z.string().regex(/^sbk_[A-Za-z0-9_-]{1,64}$/) }),
    status: 204,
    async handle({ principal, params, services }) {
      if (!(await services.store.deleteKey(principal.orgId, params.keyId))) {
        throw new NotFoundError(`key ${params.keyId} not found`);
      }
      // Other nodes learn it from their commits' key check; this one need not run a step first.
      services.authenticator.forget(params.keyId);
    },
  }),
];
