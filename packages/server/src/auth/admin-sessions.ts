// The first admin of a fresh server, and the admin session tokens the server mints for its users
// (what `backstate serve` writes to credentials.json, and what the CLI sends).
import { randomBytes } from "node:crypto";
import { signToken } from "@backstate/token";
import type { Clock } from "../engine/clock.js";
import type { IdGenerator } from "../engine/ids.js";
import { AlreadyExistsError } from "../errors.js";
import type { Store } from "../store/store.js";
import { ADMIN_AUDIENCE } from "./authenticator.js";
import { ANONYMOUS_SERVICE, provisionAnonymousAccess } from "./token-exchange/anonymous.js";

export type Bootstrap = { orgId: string; userId: string; created: boolean };

/**
 * Creates the first user and org, once per database: the ids are claimed through settings, so
 * nodes starting together agree on one admin. Later calls answer the same ids. The org allows
 * anonymous sessions, as orgs do by default (a bootstrap org created before token exchange
 * existed is left as it was).
 *
 * The creation is several writes after the claim. A start cut short between them (a crash, a
 * kill, Ctrl-C twice) left the ids claimed and the admin missing, and every later start waited
 * for a creator that was gone, then failed: the data dir never served again. So a start that
 * finds the admin unfinished, once its creator has had the time to finish it, finishes it
 * itself; each step is skipped when already done, and the membership, written last, is what
 * says the admin is there.
 */
export async function ensureBootstrapAdmin(
  store: Store,
  ids: IdGenerator,
  clock: Clock,
  options: {
    /**
     * No other node can be creating the admin (SQLite, the data dir claimed by this process):
     * an unfinished one is finished at once, without waiting for its creator.
     */
    alone?: boolean;
  } = {},
): Promise<Bootstrap> {
  const candidate: ClaimedIds = { userId: ids("usr"), orgId: ids("org"), at: clock.now() };
  // One setting for both ids: nodes starting together on an empty database agree on one pair,
  // and exactly one of them (the one whose pair was stored) creates the user and the org.
  const claimed = JSON.parse(
    await store.ensureSetting("bootstrap-admin", JSON.stringify(candidate)),
  ) as ClaimedIds;
  const { userId, orgId } = claimed;
  const ours = userId === candidate.userId && orgId === candidate.orgId;
  if (!ours && (await createdByAnother(store, claimed, clock, options.alone === true))) {
    return { orgId, userId, created: false };
  }
  const now = clock.now();
  // Another node may be finishing it too (both found it unfinished after the creator's time, or
  // the creator was just slow): a row it wrote between our look and our write is the same row.
  if ((await store.getUser(userId)) === undefined) {
    await alreadyThereIsFine(store.createUser({ id: userId, name: "admin", createdAt: now }));
  }
  if ((await store.getOrg(orgId)) === undefined) {
    await alreadyThereIsFine(store.createOrg({ id: orgId, name: "default", createdAt: now }));
  }
  if ((await store.getTokenProvider(orgId, ANONYMOUS_SERVICE)) === undefined) {
    await provisionAnonymousAccess(store, orgId, now);
  }
  await store.setOrgMember(orgId, userId, "admin", now);
  return { orgId, userId, created: true };
}

async function alreadyThereIsFine(creating: Promise<void>): Promise<void> {
  try {
    await creating;
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
  }
}

/** The setting's value; `at` (when the pair was claimed) is missing in those of older servers. */
type ClaimedIds = { userId: string; orgId: string; at?: number };

/** How long the node that claimed the ids has to create the admin before others finish it. */
const CREATOR_TIME_MS = 30_000;

/**
 * Waits for the node that claimed the ids to create the admin: true once it has, false when it
 * has had its time and the admin is still unfinished (that node is gone).
 */
async function createdByAnother(
  store: Store,
  claimed: ClaimedIds,
  clock: Clock,
  alone: boolean,
): Promise<boolean> {
  for (let waited = 0; ; waited += 100) {
    if ((await store.getOrgRole(claimed.orgId, claimed.userId)) !== undefined) return true;
    if (alone) return false;
    const elapsed = claimed.at === undefined ? waited : Math.max(waited, clock.now() - claimed.at);
    if (elapsed >= CREATOR_TIME_MS) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
