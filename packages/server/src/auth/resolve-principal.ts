// From a Caller to a Principal: which org the request acts in (§1.9 of the API contract), what
// scopes it holds there, and whose authContext the machine's authorizers see (act-as).
import { BackstateError, ForbiddenError, InvalidParameterError, NotFoundError } from "../errors.js";
import { z } from "zod";
import type { JsonObject } from "../runtime/adapter-protocol.js";
import { callerNestingProblem } from "../runtime/json-check.js";
import type { KeyRecord, Store } from "../store/store.js";
import type { Caller, Principal } from "./principal.js";
import { reservedClaimProblem } from "./reserved-claims.js";
import { ROLE_SCOPES, isScope, type Scope } from "./scopes.js";

export const ORG_HEADER = "x-statebacked-org-id";
export const ACT_HEADER = "x-statebacked-act";

const OrgIdHeader = z.string().regex(/^org_[A-Za-z0-9_-]{1,64}$/);

// The act-as header: a JSON object, within a bound well under node's 16 KB header limit, and
// nested no deeper than any JSON a caller sends.
const ActHeader = z
  .string()
  .max(8192, { message: "it is too large" })
  .transform((text, ctx) => {
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "it is not valid JSON" });
      return z.NEVER;
    }
    const tooDeep = callerNestingProblem(value, "it");
    if (tooDeep !== undefined) {
      ctx.addIssue({ code: "custom", message: tooDeep });
      return z.NEVER;
    }
    // Acting as an end user, never as an instance of the org's machines, and with no key named
    // __proto__ (the record below is built by assignment, which would set a prototype instead).
    const reserved =
      typeof value === "object" && value !== null ? reservedClaimProblem(value, "it") : undefined;
    if (reserved !== undefined) {
      ctx.addIssue({ code: "custom", message: reserved });
      return z.NEVER;
    }
    return value;
  })
  .pipe(z.record(z.string(), z.unknown(), { message: "it is not an object" }));

export type PrincipalHeaders = { org: string | undefined; act: string | undefined };

type OrgScopes = { orgId: string; scopes: ReadonlySet<Scope> };

/**
 * The caller's principal. A key's is answered at once, without a promise (a key names its org and
 * scopes itself): that is every event a client sends. An admin's org may need the store.
 */
export function resolvePrincipal(
  store: Store,
  caller: Caller,
  headers: PrincipalHeaders,
): Principal | Promise<Principal> {
  if (caller.kind === "key") {
    // A key belongs to exactly one org; the header, if any, cannot move it elsewhere.
    return principalIn({ orgId: caller.key.orgId, scopes: scopesOf(caller.key) }, caller, headers);
  }
  return adminOrgAndScopes(store, caller.session.userId, headers.org).then((found) =>
    principalIn(found, caller, headers),
  );
}

function principalIn(
  { orgId, scopes }: OrgScopes,
  caller: Caller,
  headers: PrincipalHeaders,
): Principal {
  let authContext = caller.claims;
  if (headers.act !== undefined) {
    // Acting as someone else is as strong as minting a key for them, so it needs that scope.
    if (!scopes.has("org.keys.write")) {
      throw new ForbiddenError(
        "missing-scope",
        `${ACT_HEADER} needs the org.keys.write scope (the right to mint keys)`,
      );
    }
    authContext = parseActHeader(headers.act);
  }
  return { caller, orgId, scopes, authContext };
}

/** By key record: a record is never changed (a key read anew is a new record). */
const keyScopes = new WeakMap<KeyRecord, ReadonlySet<Scope>>();

function scopesOf(key: KeyRecord): ReadonlySet<Scope> {
  let scopes = keyScopes.get(key);
  if (scopes === undefined) {
    scopes = new Set(key.scopes.filter(isScope));
    keyScopes.set(key, scopes);
  }
  return scopes;
}

async function adminOrgAndScopes(
  store: Store,
  userId: string,
  orgHeader: string | undefined,
): Promise<OrgScopes> {
  if (orgHeader !== undefined) {
    if (!OrgIdHeader.safeParse(orgHeader).success) {
      throw new InvalidParameterError(ORG_HEADER, `${ORG_HEADER} must be an org id (org_…)`);
    }
    const role = await store.getOrgRole(orgHeader, userId);
    // Not a member and no such org give the same answer.
    if (!role) throw new NotFoundError(`org ${orgHeader} not found`);
    return { orgId: orgHeader, scopes: ROLE_SCOPES[role] };
  }
  const memberships = await store.listOrgsOfUser(userId, { limit: 2 });
  const [only, second] = memberships;
  if (!only) throw new ForbiddenError("missing-org", "this user belongs to no org yet");
  if (second) {
    throw new BackstateError(
      "specify-org",
      `this user belongs to several orgs: name one in the ${ORG_HEADER} header`,
    );
  }
  return { orgId: only.org.id, scopes: ROLE_SCOPES[only.role] };
}

function parseActHeader(text: string): JsonObject {
  const parsed = ActHeader.safeParse(text);
  if (parsed.success) return parsed.data as JsonObject;
  const why = parsed.error.issues[0]?.message ?? "it is invalid";
  throw new InvalidParameterError(ACT_HEADER, `${ACT_HEADER} must be a JSON object: ${why}`);
}
