// Flag value parsers shared by commands: each answers the parsed value or throws commander's
// InvalidArgumentError, which commander reports next to the flag (or environment variable) with
// the value given; parseToken alone throws a CliError, so a refused secret is not repeated.
import { InvalidArgumentError } from "commander";
import { CliError, EXIT_USAGE } from "./errors.js";

export function parsePort(value: string): number {
  const port = /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new InvalidArgumentError("Expected a port number from 0 to 65535 (0: any free port).");
  }
  return port;
}

/**
 * A parser for a whole number from `min` to `max`; `what` names it in the message, e.g.
 * "a settle timeout in milliseconds".
 */
export function wholeNumberFrom(min: number, max: number, what: string) {
  return (value: string): number => {
    const number = /^\s*\d{1,16}\s*$/.test(value) ? Number(value) : NaN;
    if (!(number >= min && number <= max)) {
      throw new InvalidArgumentError(
        `Expected ${what}, a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}.`,
      );
    }
    return number;
  };
}

export function parseHost(value: string): string {
  const host = value.trim();
  if (host === "" || /\s/.test(host)) {
    throw new InvalidArgumentError("Expected a host name or IP address, e.g. 127.0.0.1.");
  }
  return host;
}

export function parsePath(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("Expected a folder path.");
  return value;
}

export function parseHttpUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash) {
    throw new InvalidArgumentError("Expected an http(s) URL, e.g. https://backstate.example.com.");
  }
  // Our own error, not commander's, which repeats the value: with the password in it.
  if (url.username !== "" || url.password !== "") {
    throw new CliError(
      "the server's URL cannot carry a user or password (the value is not shown): the token is what signs in",
      EXIT_USAGE,
    );
  }
  return url.href.replace(/\/+$/, "");
}

/** A PostgreSQL connection URL (its password stays in it; it is never printed, refused or not). */
export function parsePostgresUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) {
    // Our own error, not commander's, which repeats the value: with the password in it.
    throw new CliError(
      "--database-url (or BACKSTATE_DATABASE_URL) is not a postgres:// URL, e.g. postgres://user@host/db (the value is not shown)",
      EXIT_USAGE,
    );
  }
  return value.trim();
}

/** Machine, instance and key names: what the API accepts in a path. */
export function parseName(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(value)) {
    throw new InvalidArgumentError("Expected a name of 1 to 128 letters, digits, '_' or '-'.");
  }
  return value;
}

export function parseOrgId(value: string): string {
  if (!/^org_[A-Za-z0-9_-]{1,64}$/.test(value.trim())) {
    throw new InvalidArgumentError("Expected an org id, e.g. org_uHvZHpF4STWvMg8BKVCUTg.");
  }
  return value.trim();
}

export function parseKeyId(value: string): string {
  if (!/^sbk_[A-Za-z0-9_-]{1,64}$/.test(value.trim())) {
    throw new InvalidArgumentError("Expected a key id, e.g. sbk_nXzdtCxESemgtxS5JX-LrA.");
  }
  return value.trim();
}

export function parseVersionId(value: string): string {
  if (!/^ver_[A-Za-z0-9_-]{1,64}$/.test(value.trim())) {
    throw new InvalidArgumentError(
      "Expected a machine version id, e.g. ver_rLmrY3NGTkS534Qj7YEM-Q.",
    );
  }
  return value.trim();
}

export function parseToken(value: string): string {
  const token = value.trim();
  // Sent as `Bearer <token>`: printable ASCII only, or fetch refuses the header and the command
  // would fail as though the server could not be reached. Refused with our own error, not
  // commander's, which repeats the value given: a secret pasted almost right would end up in
  // terminals and CI logs.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new CliError(
      "--token (or BACKSTATE_TOKEN) is not a token: one is printable ASCII with no spaces (the value is not shown)",
      EXIT_USAGE,
    );
  }
  return token;
}

export type JsonObject = { [key: string]: unknown };

/** A JSON object, as --auth-context, --context and --claims take. */
export function parseJsonObject(value: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(
      `Expected a JSON object, e.g. '{"sub":"alice"}' (${(error as Error).message}).`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`Expected a JSON object, e.g. '{"sub":"alice"}'.`);
  }
  return parsed as JsonObject;
}

/** An event: its type as plain text, or a JSON object with a `type` when it starts with `{`. */
export function parseEvent(value: string): string | JsonObject {
  if (!value.trimStart().startsWith("{")) {
    if (value.trim() === "") throw new InvalidArgumentError("Expected an event type.");
    return value;
  }
  const event = parseJsonObject(value);
  if (typeof event.type !== "string" || event.type === "") {
    throw new InvalidArgumentError(`Expected a "type" in the event, e.g. '{"type":"add","n":2}'.`);
  }
  return event;
}

const DURATION =
  /^\d+(\.\d+)? ?(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?|w|weeks?|y|yr|yrs|years?)$/i;

/** A token lifetime such as 30m, 12h or 7d. */
export function parseDuration(value: string): string {
  if (!DURATION.test(value.trim())) {
    throw new InvalidArgumentError("Expected a duration such as 30m, 12h or 7d.");
  }
  return value.trim();
}

export function parseFile(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("Expected a file path.");
  return value;
}

export function parseScope(value: string, previous: string[] | undefined): string[] {
  if (!/^[a-z][a-z.-]*$/.test(value)) {
    throw new InvalidArgumentError("Expected a scope such as state.read or instances.write.");
  }
  return [...(previous ?? []), value];
}

/** The algorithms an identity provider may allow (`--alg`, repeatable). */
export const SIGNING_ALGORITHMS = [
  "HS256",
  "HS384",
  "HS512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

export function parseAlgorithm(value: string, previous: string[] | undefined): string[] {
  const found = SIGNING_ALGORITHMS.find((alg) => alg.toLowerCase() === value.trim().toLowerCase());
  if (found === undefined) {
    throw new InvalidArgumentError(`Expected one of ${SIGNING_ALGORITHMS.join(", ")}.`);
  }
  return previous?.includes(found) ? previous : [...(previous ?? []), found];
}

export function isHmacAlgorithm(alg: string): boolean {
  return alg.startsWith("HS");
}

/** An absolute http(s) URL, kept as given (a JWKS URL may have a query). */
export function parseAbsoluteUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new InvalidArgumentError(
      "Expected an https URL, e.g. https://example.auth0.com/.well-known/jwks.json.",
    );
  }
  return url.href;
}

/** A binary key in base64 or base64url; answers its base64url. */
export function parseBase64Key(value: string): string {
  // Line breaks and spaces are dropped: `base64` wraps its output at 76 columns.
  const text = value.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    // Our own error, not commander's, which repeats the value: a secret.
    throw new CliError(
      "--base64-key is not the key's bytes in base64 or base64url (the value is not shown)",
      EXIT_USAGE,
    );
  }
  return Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("base64url");
}

export function parseNonEmpty(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("Expected a value.");
  return value;
}

/**
 * A claims mapping: a JSON object whose keys ending in `.$` take a JSONPath string into the
 * input (`{"sub.$":"$.sub"}`) and whose other keys are literals (objects under them are mappings
 * too). The server checks the paths themselves.
 */
export function parseMapping(value: string): JsonObject {
  let mapping: JsonObject;
  try {
    mapping = parseJsonObject(value);
  } catch {
    throw new InvalidArgumentError(
      `Expected a mapping: a JSON object such as '{"sub.$":"$.sub"}' (keys ending in .$ take a JSONPath).`,
    );
  }
  const walk = (node: JsonObject, where: string): void => {
    for (const [key, child] of Object.entries(node)) {
      const at = where === "" ? JSON.stringify(key) : `${where}.${JSON.stringify(key)}`;
      if (key.endsWith(".$")) {
        if (typeof child !== "string" || child.trim() === "") {
          throw new InvalidArgumentError(
            `Expected a JSONPath string such as "$.sub" for the mapping's key ${at}.`,
          );
        }
      } else if (typeof child === "object" && child !== null && !Array.isArray(child)) {
        walk(child as JsonObject, at);
      }
    }
  };
  walk(mapping, "");
  return mapping;
}

/** The most characters of a version's reference (its clientInfo) the server keeps. */
export const MAX_VERSION_REFERENCE_CHARS = 1024;

/**
 * A version's reference (-r), checked as the server checks clientInfo before anything is sent:
 * `machines create --file` would otherwise make the machine, then fail to finalize its version.
 */
export function parseVersionReference(value: string): string {
  if (value.length > MAX_VERSION_REFERENCE_CHARS || value.includes("\u0000")) {
    throw new CliError(
      `--version-reference is at most ${MAX_VERSION_REFERENCE_CHARS} characters, with no NUL`,
      EXIT_USAGE,
    );
  }
  return value;
}
