// Orgs: an admin session lists the orgs it belongs to and creates new ones (becoming their admin).
import { z } from "zod";
import { ForbiddenError } from "../../errors.js";
import type { Caller } from "../../auth/principal.js";
import { provisionAnonymousAccess } from "../../auth/token-exchange/anonymous.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { route } from "../route.js";
import { CursorQuery, StoredText } from "../schemas.js";
import { isoDate } from "../wire.js";

// A self-hosted org has no quota; the field is required on the wire, so it says "unbounded".
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

function userOf(caller: Caller): string {
  if (caller.kind !== "admin") {
    throw new ForbiddenError("missing-user", "only an admin session (not a key) can manage orgs");
  }
  return caller.session.userId;
}

export const orgRoutes = [
  route<undefined, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/orgs",
    summary: "List the orgs the session's user belongs to",
    access: { kind: "user" },
    query: CursorQuery,
    status: 200,
    async handle({ caller, query, services }) {
      const after = decodeCursor(query.cursor, StoredText);
      const rows = await services.store.listOrgsOfUser(userOf(caller), {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (row) => row.org.id,
        ({ org, role }) => ({
          id: org.id,
          name: org.name,
          role,
          createdAt: isoDate(org.createdAt),
          limits: { monthlyEventsLimit: NO_LIMIT, monthlyReadsLimit: NO_LIMIT },
        }),
      );
      return { orgs: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<undefined, undefined, { name: string; allowAnonymousAccess?: boolean | undefined }>({
    method: "POST",
    path: "/orgs",
    summary:
      "Create an org; the session's user becomes its admin. Unless allowAnonymousAccess is " +
      "false, it takes anonymous sessions (a production key, an identity provider and the " +
      "anonymous-statebacked-dev token provider are created with it)",
    access: { kind: "user" },
    body: z.object({
      name: StoredText.min(1).max(256),
      allowAnonymousAccess: z.boolean().optional(),
    }),
    status: 200,
    async handle({ caller, body, services }) {
      const userId = userOf(caller);
      const id = services.ids("org");
      const now = services.clock.now();
      await services.store.createOrg({ id, name: body.name, createdAt: now });
      await services.store.setOrgMember(id, userId, "admin", now);
      if (body.allowAnonymousAccess !== false) {
        await provisionAnonymousAccess(services.store, id, now);
      }
      return { id };
    },
  }),
];
