// Credentials files. <data-dir>/credentials.json: where `backstate serve` leaves the bootstrap
// admin's session token for the CLI and for scripts (examples/quickstart.mjs). And one file per
// server that `backstate login` writes under ~/.backstate/credentials/. Both hold a secret: 0600.
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

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
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  const { apiUrl, orgId, adminToken } = credentials;
  writeFileSync(temporary, `${JSON.stringify({ apiUrl, orgId, adminToken }, null, 2)}\n`, {
    mode: 0o600,
  });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/** Where `backstate login` keeps its files: $BACKSTATE_HOME, else ~/.backstate (~ from $HOME). */
export function backstateHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.BACKSTATE_HOME?.trim();
  return configured ? configured : join(homedir(), ".backstate");
}

/**
 * The login file for a server: `<home>/credentials/<host>_<port>.json`, plus the URL's path when
 * the API lives under one (`api.example.com_443_sb.json`).
 */
export function loginCredentialsPath(apiUrl: string, home: string = backstateHome()): string {
  const url = new URL(apiUrl);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const path = url.pathname.replace(/^\/+|\/+$/g, "");
  const name = [url.hostname, port, ...(path ? [path] : [])]
    .join("_")
    .replace(/[^A-Za-z0-9.-]+/g, "_");
  return join(home, "credentials", `${name}.json`);
}

/** Every readable login file, for the server each names. */
export function listLogins(
  home: string = backstateHome(),
): { path: string; credentials: Credentials }[] {
  const folder = join(home, "credentials");
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  const found: { path: string; credentials: Credentials }[] = [];
  for (const name of names.filter((candidate) => candidate.endsWith(".json")).sort()) {
    const path = join(folder, name);
    const credentials = readCredentials(path);
    if (credentials && credentials !== "invalid") found.push({ path, credentials });
  }
  return found;
}
