// Coded errors for the whole server. Domain code throws these; the HTTP layer (one table) maps each
// code to a status. Misuse of an internal API throws TypeError instead.

export type ErrorCode =
  // input
  | "invalid-parameter"
  | "context-too-large"
  | "not-json-serializable"
  // lookups and state
  | "not-found"
  | "already-exists"
  | "invalid-state"
  | "conflict"
  // authentication and authorization of the caller
  | "token-missing"
  | "token-unknown-key"
  | "missing-scope"
  | "missing-org"
  | "missing-user"
  | "specify-org"
  // authorization by the machine
  | "rejected-by-machine-authorizer"
  // machine code and its runtime
  | "invalid-bundle"
  | "machine-error"
  | "sandbox-timeout"
  | "sandbox-memory-exceeded"
  | "sandbox-crashed"
  // the API surface
  | "not-implemented"
  | "payload-too-large"
  | "method-not-allowed"
  | "upgrade-required"
  | "too-many-connections"
  | "too-many-connections-from-address"
  | "shutting-down"
  // storage
  | "store-newer-than-server"
  | "store-error"
  | "migration-blocked"
  // starting a server
  | "data-dir-in-use"
  | "data-dir-unusable";

/** The base of every coded server error. `code` is stable; `message` is for people. */
export class BackstateError extends Error {
  override name = "BackstateError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Bad input: names the offending parameter, as the API's `{ error, code, parameter }` body does. */
export class InvalidParameterError extends BackstateError {
  override name = "InvalidParameterError";
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super("invalid-parameter", message);
    this.parameter = parameter;
  }
}

/** The machine's own allowRead / allowWrite refused (or threw, or did not answer a boolean). */
export class RejectedByMachineAuthorizerError extends BackstateError {
  override name = "RejectedByMachineAuthorizerError";
  constructor(message: string) {
    super("rejected-by-machine-authorizer", message);
  }
}

/** Something named in a request does not exist (or belongs to another org: the same answer). */
export class NotFoundError extends BackstateError {
  override name = "NotFoundError";
  constructor(message: string) {
    super("not-found", message);
  }
}

/** A create collided with an existing name. */
export class AlreadyExistsError extends BackstateError {
  override name = "AlreadyExistsError";
  constructor(message: string) {
    super("already-exists", message);
  }
}

/** A write lost a race: the row changed since it was read (optimistic single-writer check). */
export class ConflictError extends BackstateError {
  override name = "ConflictError";
  constructor(message: string) {
    super("conflict", message);
  }
}

/**
 * The API key a write was made with was deleted before the write could commit. Its code is the
 * one verifying a token of a deleted key gives, so clients see one answer for one cause.
 */
export class SigningKeyGoneError extends BackstateError {
  override name = "SigningKeyGoneError";
  constructor(keyId: string) {
    super("token-unknown-key", `key ${keyId} no longer exists: tokens it signed are refused`);
  }
}

/** Untrusted machine code failed: it threw, overran its budget, or took its sandbox down. */
export class MachineCodeError extends BackstateError {
  override name = "MachineCodeError";
}

/** The caller's credentials do not allow this: a scope, an org or a user session is missing. */
export class ForbiddenError extends BackstateError {
  override name = "ForbiddenError";
  constructor(code: "missing-scope" | "missing-org" | "missing-user", message: string) {
    super(code, message);
  }
}

/**
 * GET /healthz's no: the node is shutting down, or its database does not answer. Not logged per
 * request (a balancer asks every few seconds); the health check logs the cause itself.
 */
export class UnhealthyError extends BackstateError {
  override name = "UnhealthyError";
  constructor(code: "shutting-down" | "store-error", message: string) {
    super(code, message);
  }
}
