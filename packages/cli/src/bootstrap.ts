// On every start of `backstate serve`: make sure the database has its first admin and that
// credentials.json holds a working session token for them, reusing the one already there.
import { chmodSync } from "node:fs";
import { ensureBootstrapAdmin, mintAdminSession, type RunningServer } from "@backstate/server";
import { readCredentials, writeCredentials, type Credentials } from "./credentials.js";

export type CredentialsOutcome =
  /** The file was missing (or unusable) and now holds a newly minted session. */
  | "created"
  /** The file was right as it was. */
  | "reused"
  /** Same org and token; the apiUrl changed. */
  | "updated";

export async function ensureAdminCredentials(
  server: RunningServer,
  path: string,
  apiUrl: string,
  /** This process alone serves the database (SQLite in a claimed data dir). */
  alone = false,
): Promise<{ credentials: Credentials; outcome: CredentialsOutcome }> {
  const { store } = server.backstate;
  const { ids, clock, logger, authenticator } = server.services;
  const admin = await ensureBootstrapAdmin(store, ids, clock, { alone });
  if (admin.created) logger.info("created the first admin and org", { orgId: admin.orgId });

  const found = readCredentials(path);
  if (found === "invalid") logger.warn("credentials file unreadable; replacing it", { path });
  let token: string | undefined;
  if (found && found !== "invalid") {
    if (found.orgId === admin.orgId && (await isSessionOf(found.adminToken, admin.userId))) {
      token = found.adminToken;
    } else {
      logger.warn("credentials file does not fit this database; minting a new session", { path });
    }
  }
  if (token === undefined) {
    token = (await mintAdminSession(store, ids, clock, admin.userId)).token;
    logger.info("minted an admin session", { userId: admin.userId });
  }

  const credentials: Credentials = { apiUrl, orgId: admin.orgId, adminToken: token };
  const reusable = found !== undefined && found !== "invalid" && found.adminToken === token;
  if (reusable && found.apiUrl === apiUrl) {
    // Kept, and kept to its owner: a mode loosened since (a copy, a chmod) is put back.
    try {
      chmodSync(path, 0o600);
    } catch (error) {
      logger.warn("could not make the credentials file readable by its owner only", {
        path,
        error: String(error),
      });
    }
    return { credentials, outcome: "reused" };
  }
  writeCredentials(path, credentials);
  return { credentials, outcome: reusable ? "updated" : "created" };

  async function isSessionOf(adminToken: string, userId: string): Promise<boolean> {
    try {
      const caller = await authenticator.authenticate(`Bearer ${adminToken}`);
      return caller.kind === "admin" && caller.session.userId === userId;
    } catch {
      return false;
    }
  }
}
