// <data-dir>/credentials.json: where `backstate serve` leaves the bootstrap admin's session
// token for the CLI and for scripts (examples/quickstart.mjs). It holds a secret: mode 0600.
import { chmodSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const CREDENTIALS_FILE = "credentials.json";

export type Credentials = {
  /** The URL clients reach the server at. */
  apiUrl: string;
  /** The bootstrap admin's org. */
  orgId: string;
  /** An admin session token for the bootstrap admin (send it as `Bearer`). */
  adminToken: string;
};

export function credentialsPath(dataDir: string): string {
  return join(dataDir, CREDENTIALS_FILE);
}

/**
 * The credentials in the file: undefined when there is no file, "invalid" when it is not the
 * JSON object this module writes.
 */
export function readCredentials(path: string): Credentials | "invalid" | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<Record<keyof Credentials, unknown>> | null;
    const { apiUrl, orgId, adminToken } = value ?? {};
    if (typeof apiUrl === "string" && typeof orgId === "string" && typeof adminToken === "string") {
      return { apiUrl, orgId, adminToken };
    }
  } catch {
    // Not JSON: the same answer as a wrong shape.
  }
  return "invalid";
}

/** Replaces the file in one step (write beside it, then rename), readable by its owner only. */
export function writeCredentials(path: string, credentials: Credentials): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const { apiUrl, orgId, adminToken } = credentials;
  writeFileSync(temporary, `${JSON.stringify({ apiUrl, orgId, adminToken }, null, 2)}\n`, {
    mode: 0o600,
  });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}
