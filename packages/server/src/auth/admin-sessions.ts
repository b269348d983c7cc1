// The first admin of a fresh server, and the admin session tokens the server mints for its users
// (what `backstate serve` writes to credentials.json, and what the CLI sends).
import { randomBytes } from "node:crypto";
import { signToken } from "@backstate/token";
import type { Clock } from "../engine/clock.js";
import type { IdGenerator } from "../engine/ids.js";
import type { Store } from "../store/store.js";
import { ADMIN_AUDIENCE } from "./authenticator.js";
import { provisionAnonymousAccess } from "./token-exchange/anonymous.js";

export type Bootstrap = { orgId: string; userId: string; created: boolean };

/**
 * Creates the first user and org, once per database: the ids are claimed through settings, so
 * nodes starting together agree on one admin. Later calls answer the same ids. The org allows
 * anonymous sessions, as orgs do by default (a bootstrap org created before token exchange
 * existed is left as it was).
 */
export async function ensureBootstrapAdmin(
  store: Store,
  ids: IdGenerator,
  clock: Clock,
): Promise<Bootstrap> {
  const candidate = { userId: ids("usr"), orgId: ids("org") };
  // One setting for both ids: nodes starting together on an empty database agree on one pair,
  // and exactly one of them (the one whose pair was stored) creates the user and the org.
  const claimed = await store.ensureSetting("bootstrap-admin", JSON.stringify(candidate));
  const { userId, orgId } = JSON.parse(claimed) as typeof candidate;
  const created = userId === candidate.userId && orgId === candidate.orgId;
  if (created) {
    const now = clock.now();
    await store.createUser({ id: userId, name: "admin", createdAt: now });
    await store.createOrg({ id: orgId, name: "default", createdAt: now });
    await store.setOrgMember(orgId, userId, "admin", now);
    await provisionAnonymousAccess(store, orgId, now);
  } else {
    // Another node claimed the pair a moment ago: wait until it has created the admin.
    for (let waited = 0; (await store.getOrgRole(orgId, userId)) === undefined; waited += 100) {
      if (waited >= 30_000) throw new Error("the bootstrap admin was never created");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { orgId, userId, created };
}

/** A new session for the user, and its token. Deleting the session revokes the token. */
export async function mintAdminSession(
  store: Store,
  ids: IdGenerator,
  clock: Clock,
  userId: string,
  lifetime: `${number}d` = "3650d",
): Promise<{ sessionId: string; token: string }> {
  const sessionId = ids("ses");
  const secret = `sbsec_${randomBytes(32).toString("base64url")}`;
  await store.createAdminSession({ id: sessionId, userId, secret, createdAt: clock.now() });
  const token = await signToken(
    { stateBackedKeyId: sessionId, stateBackedSecretKey: secret },
    { sub: userId },
    { expires: { in: lifetime }, issuer: "backstate", audience: ADMIN_AUDIENCE },
  );
  return { sessionId, token };
}
