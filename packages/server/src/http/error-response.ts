// The one place that maps errors to HTTP: a table from error code to status, and the body every
// failure answers with, `{ error, code, parameter? }`. Unknown errors are 500 and logged. The
// exception is POST /tokens, whose OAuth errors (RFC 6749) keep their own body, decided in
// auth/token-exchange/oauth-error.ts.
import { TokenError } from "@backstate/token";
import {
  BackstateError,
  InvalidParameterError,
  UnhealthyError,
  type ErrorCode,
} from "../errors.js";
import type { Logger } from "../engine/logger.js";
import { OAuthError } from "../auth/token-exchange/oauth-error.js";

export type ErrorBody = {
  error: string;
  code: string;
  parameter?: string;
  /** Only in OAuth error bodies (POST /tokens), where `error` is the RFC 6749 error code. */
  error_description?: string;
};

/**
 * A missing, malformed, expired or unverifiable token: 403, not 401. State Backed's API documents
 * only 403 here, and the official client turns 403 into UnauthorizedError (what callers catch to
 * sign in again) but 401 into a bare ApiError (api-contract §1.5).
 */
const TOKEN_REFUSED = 403;

const STATUS_OF: Record<ErrorCode, number> = {
  "invalid-parameter": 400,
  "context-too-large": 400,
  "not-json-serializable": 400,
  "invalid-bundle": 400,
  "specify-org": 400,
  "token-missing": TOKEN_REFUSED,
  "token-unknown-key": TOKEN_REFUSED,
  "missing-scope": 403,
  "missing-org": 403,
  "missing-user": 403,
  "rejected-by-machine-authorizer": 403,
  "not-found": 404,
  "method-not-allowed": 405,
  "already-exists": 409,
  "invalid-state": 409,
  conflict: 409,
  "payload-too-large": 413,
  "upgrade-required": 426,
  // This client holds its share of the node's connections (connections-per-address.ts): 429, not
  // 503, as the server has room for others, and a proxy should not count it as down.
  "too-many-connections-from-address": 429,
  // The machine's own code failed (threw, overran its budget): the request could not be done,
  // but the server is fine, and retrying the same request will fail the same way.
  "machine-error": 422,
  "sandbox-timeout": 422,
  "sandbox-memory-exceeded": 422,
  "not-implemented": 501,
  // Transient: a sandbox died under someone else's load, or the database is unavailable.
  "sandbox-crashed": 503,
  "store-error": 503,
  // The node holds as many connections as it may (connection-cap.ts): later, there is room.
  "too-many-connections": 503,
  "store-newer-than-server": 503,
  // Only at start: a migration could not lock its tables (a long transaction holds them).
  "migration-blocked": 503,
  // The node is draining (GET /healthz while it shuts down): a balancer sends requests elsewhere.
  "shutting-down": 503,
  // Only at start, never in an answer: the server does not start.
  "data-dir-in-use": 503,
  "data-dir-unusable": 503,
};

export function errorResponse(err: unknown, logger: Logger): { status: number; body: ErrorBody } {
  if (err instanceof OAuthError) {
    if (err.status >= 500) logger.warn("token exchange failed", { error: String(err) });
    return { status: err.status, body: err.body };
  }
  if (err instanceof TokenError) {
    return { status: TOKEN_REFUSED, body: { error: err.message, code: err.code } };
  }
  if (err instanceof BackstateError) {
    // A code outside the table (one that came from elsewhere with a cast) is ours to answer: 500.
    const status = Object.hasOwn(STATUS_OF, err.code) ? STATUS_OF[err.code] : 500;
    if (status >= 500 && !(err instanceof UnhealthyError)) {
      logger.warn("request failed", { code: err.code, error: String(err) });
    }
    // The driver's words (a refused connection's address, a refused login's role) are for the
    // log above, not for whoever sent the request: no token is needed to make the store answer.
    const message =
      err.code === "store-error" && !(err instanceof UnhealthyError)
        ? "storage is unavailable; try again"
        : err.message;
    const body: ErrorBody = { error: message, code: err.code };
    if (err instanceof InvalidParameterError) body.parameter = err.parameter;
    return { status, body };
  }
  logger.error("unexpected error while handling a request", {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return { status: 500, body: { error: "internal server error", code: "internal-error" } };
}
