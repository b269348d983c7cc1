// Exit codes, and the errors commands throw to fail with a plain message (no stack trace): a
// CliError says what went wrong and, in `hint`, what to do about it.

/** Every exit code `backstate` uses; scripts can rely on them (README, `backstate --help`). */
export const EXIT_OK = 0;
/** The server failed or refused the request for another reason (a 5xx, a 400, machine code). */
export const EXIT_FAILURE = 1;
/** A usage error: a bad flag or value, an unknown command. Nothing was sent. */
export const EXIT_USAGE = 2;
/** No credentials, or the server refused them or the operation (401, 403). */
export const EXIT_AUTH = 3;
/** What was named does not exist (404). */
export const EXIT_NOT_FOUND = 4;
/** It exists already, or its state forbids this (409): a taken name, a paused instance. */
export const EXIT_CONFLICT = 5;
/** The machine file cannot be used: it does not bundle, or lacks the exports it needs. */
export const EXIT_INVALID_MACHINE = 6;
/** The server cannot be reached: not running, wrong URL, a network failure or a timeout. */
export const EXIT_UNREACHABLE = 7;

export const EXIT_CODES: ReadonlyArray<readonly [number, string]> = [
  [EXIT_OK, "success"],
  [EXIT_FAILURE, "the server failed or refused the request (5xx, 400, machine code error)"],
  [EXIT_USAGE, "usage error: a bad flag or value (nothing was sent)"],
  [EXIT_AUTH, "no credentials, or not allowed (401, 403, an authorizer said no)"],
  [EXIT_NOT_FOUND, "not found (404)"],
  [EXIT_CONFLICT, "conflict (409): the name is taken, the instance is paused"],
  [EXIT_INVALID_MACHINE, "the machine file does not bundle or lacks its exports"],
  [EXIT_UNREACHABLE, "the server cannot be reached"],
];

export class CliError extends Error {
  override name = "CliError";
  readonly exitCode: number;
  /** What to do about it, for people. */
  readonly hint: string | undefined;
  constructor(message: string, exitCode: number = EXIT_FAILURE, hint?: string) {
    super(message);
    this.exitCode = exitCode;
    this.hint = hint;
  }

  /** The error as `--json` prints it (on stderr). */
  toJSON(): Record<string, unknown> {
    return {
      error: {
        message: this.message,
        exitCode: this.exitCode,
        ...(this.hint ? { hint: this.hint } : {}),
      },
    };
  }
}

/** The server answered with an error: its status, its `code`, and the parameter it blames. */
export class ApiError extends CliError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly parameter: string | undefined,
    hint: string | undefined,
  ) {
    super(
      `${serverMessage} (HTTP ${status}, code ${code}${parameter ? `, parameter ${parameter}` : ""})`,
      exitCodeFor(status, code),
      hint,
    );
  }

  override toJSON(): Record<string, unknown> {
    return {
      error: {
        message: this.serverMessage,
        status: this.status,
        code: this.code,
        ...(this.parameter ? { parameter: this.parameter } : {}),
        exitCode: this.exitCode,
        ...(this.hint ? { hint: this.hint } : {}),
      },
    };
  }
}

export function exitCodeFor(status: number, code: string): number {
  if (code === "invalid-bundle") return EXIT_INVALID_MACHINE;
  if (status === 401 || status === 403) return EXIT_AUTH;
  if (status === 404) return EXIT_NOT_FOUND;
  if (status === 409) return EXIT_CONFLICT;
  return EXIT_FAILURE;
}

/** What the user can do about a server error code (undefined: the message says it all). */
export function hintFor(code: string, status: number, message = ""): string | undefined {
  if (code.startsWith("token-") || code === "invalid-token") {
    return (
      "the server refused the token: log in again with `backstate login --api-url URL --token " +
      "TOKEN`, or pass a current one with --token (or BACKSTATE_TOKEN); `backstate whoami` " +
      "shows which credentials are used"
    );
  }
  switch (code) {
    case "missing-scope":
      return "these credentials lack a scope this needs: use an admin session token (credentials.json of `backstate serve`)";
    case "missing-org":
      return "this user belongs to no org";
    case "specify-org":
      return "this user belongs to several orgs: choose one with --org ORG (or BACKSTATE_ORG)";
    case "rejected-by-machine-authorizer":
      return "the machine's allowRead/allowWrite said no: check --auth-context (the end user's claims, e.g. '{\"sub\":\"alice\"}')";
    case "not-found":
      return "check the name: `backstate machines list` and `backstate instances list --machine M` show what exists";
    case "already-exists":
      return "the name is taken: choose another, or add a version with `backstate machine-versions create`";
    case "invalid-state":
      if (/paused/i.test(message)) return "resume it with `backstate instances resume`";
      if (/version/i.test(message)) {
        return "upload a version with `backstate machine-versions create --machine M --file F --make-current`";
      }
      return undefined;
    case "invalid-bundle":
      return "fix the machine file; `backstate machine-versions check --file FILE` checks it without uploading";
    case "machine-error":
    case "sandbox-timeout":
    case "sandbox-memory-exceeded":
      return "the machine's own code failed; the server's log has the details";
    case "payload-too-large":
      return "the bundle is too large (1 MB gzipped, 10 MB unzipped at most)";
    case "sandbox-crashed":
    case "store-error":
      return "a transient server failure: try again";
    case "invalid-parameter":
      if (/^mapping /.test(message)) {
        return `a mapping is a JSON object: keys ending in .$ take a JSONPath into the claims ('{"sub.$":"$.sub"}'), other keys are literals`;
      }
      return undefined;
    default:
      if (status >= 500)
        return "the server failed; its log (stderr of `backstate serve`) has the details";
      return undefined;
  }
}
