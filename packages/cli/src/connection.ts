// Which server a command talks to, with which admin token and org. Each is taken from the first
// of these that has it:
//   1. the flags (--api-url, --token, --org), or their variables (BACKSTATE_API_URL, …);
//   2. the login file of that server (`backstate login`, ~/.backstate/credentials/<host_port>.json);
//   3. <data-dir>/credentials.json (what `backstate serve` writes), when it names that server.
// Without --api-url the server is the one <data-dir>/credentials.json names, else the only server
// logged in to. A token is never sent to a server other than the one its file names.
import { statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import {
  backstateHome,
  credentialsPath,
  listLogins,
  loginCredentialsPath,
  readCredentials,
  type Credentials,
} from "./credentials.js";
import { CliError, EXIT_AUTH } from "./errors.js";

/** The options every command accepts (declared on the program, see program.ts). */
export type GlobalOptions = {
  apiUrl?: string;
  token?: string;
  org?: string;
  dataDir: string;
  json?: boolean;
  color?: boolean;
};

export type Source = "flag" | "env" | "login" | "data-dir";

export type Connection = {
  apiUrl: string;
  token: string;
  orgId: string | undefined;
  /** Where each value came from, and the file read (for `backstate whoami`). */
  sources: { apiUrl: Source; token: Source; orgId: Source | undefined };
  files: string[];
  /** What the user should hear of before the command runs (a token file others can read). */
  warnings: string[];
};

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** Where commander took a global option from: the command line or its environment variable. */
function flagSource(command: Command, name: keyof GlobalOptions): Source | undefined {
  let root = command;
  while (root.parent) root = root.parent;
  const source = root.getOptionValueSource(name);
  if (source === "cli") return "flag";
  if (source === "env") return "env";
  return undefined;
}

export function resolveConnection(command: Command): Connection {
  const options = globalOptions(command);
  const dataDirPath = credentialsPath(resolve(options.dataDir));
  const { credentials: dataDir, problem: dataDirProblem } = readForConnection(dataDirPath);
  const home = backstateHome();

  let apiUrl: string;
  let apiUrlSource: Source;
  if (options.apiUrl !== undefined) {
    apiUrl = options.apiUrl;
    apiUrlSource = flagSource(command, "apiUrl") ?? "flag";
  } else if (dataDir) {
    apiUrl = dataDir.apiUrl;
    apiUrlSource = "data-dir";
  } else {
    const logins = listLogins(home);
    const only = logins.length === 1 ? logins[0] : undefined;
    if (!only) {
      throw new CliError(
        logins.length === 0
          ? "no server to talk to: no --api-url, no login, and " +
              (dataDirProblem ?? `no credentials.json in the data dir (${dataDirPath})`)
          : `logged in to several servers (${logins.map((login) => login.credentials.apiUrl).join(", ")}): choose one with --api-url`,
        EXIT_AUTH,
        "log in with `backstate login --api-url URL --token TOKEN`, run the command where " +
          "`backstate serve` keeps its data (--data-dir), or pass --api-url and --token",
      );
    }
    apiUrl = only.credentials.apiUrl;
    apiUrlSource = "login";
  }

  const loginPath = loginCredentialsPath(apiUrl, home);
  const { credentials: login, problem: loginProblem } = readForConnection(loginPath);
  const fromLogin = login && sameServer(login.apiUrl, apiUrl) ? login : undefined;
  const fromDataDir = dataDir && sameServer(dataDir.apiUrl, apiUrl) ? dataDir : undefined;
  const files = [...(fromLogin ? [loginPath] : []), ...(fromDataDir ? [dataDirPath] : [])];

  let token: string;
  let tokenSource: Source;
  if (options.token !== undefined) {
    token = options.token;
    tokenSource = flagSource(command, "token") ?? "flag";
  } else if (fromLogin) {
    token = fromLogin.adminToken;
    tokenSource = "login";
  } else if (fromDataDir) {
    token = fromDataDir.adminToken;
    tokenSource = "data-dir";
  } else {
    throw new CliError(
      [`no credentials for ${apiUrl}`, loginProblem, dataDirProblem]
        .filter((part) => part !== undefined)
        .join("; "),
      EXIT_AUTH,
      `log in with \`backstate login --api-url ${apiUrl} --token TOKEN\`, or pass --token ` +
        `(or BACKSTATE_TOKEN); looked in ${loginPath} and ${dataDirPath}`,
    );
  }

  let orgId: string | undefined;
  let orgSource: Source | undefined;
  if (options.org !== undefined) {
    orgId = options.org;
    orgSource = flagSource(command, "org") ?? "flag";
  } else if (fromLogin) {
    orgId = fromLogin.orgId;
    orgSource = "login";
  } else if (fromDataDir) {
    orgId = fromDataDir.orgId;
    orgSource = "data-dir";
  }

  const tokenFile =
    tokenSource === "login" ? loginPath : tokenSource === "data-dir" ? dataDirPath : undefined;
  const exposed = tokenFile === undefined ? undefined : exposureOf(tokenFile);
  return {
    apiUrl,
    token,
    orgId,
    sources: { apiUrl: apiUrlSource, token: tokenSource, orgId: orgSource },
    files,
    warnings: exposed === undefined ? [] : [exposed],
  };
}

/**
 * Why a file holding an admin token is open to other users of the machine, if it is: its mode
 * gives group or others any access. It is still used (as `serve` and `login` write 0600, a looser
 * mode was set by hand), but the user is told how to close it.
 */
function exposureOf(path: string): string | undefined {
  if (process.platform === "win32") return undefined;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  const octal = mode.toString(8).padStart(4, "0");
  return `${path} holds an admin token and is open to other users (mode ${octal}): run \`chmod 600 ${path}\``;
}

/**
 * The credentials a file holds for choosing a connection. One that cannot be read, or is not a
 * credentials file, holds none (flags may still name everything), and `problem` says why, for
 * the message when nothing else does.
 */
function readForConnection(path: string): { credentials?: Credentials; problem?: string } {
  let found: ReturnType<typeof readCredentials>;
  try {
    found = readCredentials(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return { problem: `${path} cannot be read (${code})` };
  }
  if (found === "invalid") return { problem: `${path} is not a credentials file (malformed)` };
  return found === undefined ? {} : { credentials: found };
}

/** Two spellings of one API URL (a trailing slash, a default port) are the same server. */
export function sameServer(a: string, b: string): boolean {
  const normal = (value: string) => {
    try {
      const url = new URL(value);
      return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
    } catch {
      return value;
    }
  };
  return normal(a) === normal(b);
}
