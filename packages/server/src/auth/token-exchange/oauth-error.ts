// The one place that decides how POST /tokens fails. RFC 8693 (token exchange) answers errors the
// RFC 6749 way, `{ error, error_description }` with `error` from a fixed set, where the rest of
// the API answers `{ error, code }`; these bodies carry both: `error` and `error_description` for
// OAuth clients, and our own `code` (a stable, more precise reason) like every other endpoint.
// src/http/error-response.ts renders an OAuthError as it is.

export type OAuthErrorType =
  /** A parameter is missing, repeated, malformed or unsupported. */
  | "invalid_request"
  /** The subject token is invalid: signature, algorithm, expiry, or no identity provider for it. */
  | "invalid_grant"
  | "unsupported_grant_type"
  /** The audience names no token provider this server can mint for. */
  | "invalid_target"
  /** The identity provider's keys cannot be fetched right now. */
  | "temporarily_unavailable"
  | "server_error";

// A subject token refused (bad signature, expired, no identity provider for it) or a service it
// may not be exchanged at: 403, as State Backed answered them (api-contract §2.3), where RFC 6749
// would say 400. Malformed requests stay 400.
const STATUS: Record<OAuthErrorType, number> = {
  invalid_request: 400,
  invalid_grant: 403,
  unsupported_grant_type: 400,
  invalid_target: 403,
  temporarily_unavailable: 503,
  server_error: 500,
};

export type OAuthErrorBody = { error: OAuthErrorType; error_description: string; code: string };

export class OAuthError extends Error {
  override name = "OAuthError";
  readonly type: OAuthErrorType;
  /** Our own reason, e.g. `token-expired` or `token-provider-not-found`. */
  readonly code: string;
  readonly status: number;

  constructor(
    type: OAuthErrorType,
    code: string,
    description: string,
    options?: { status?: number; cause?: unknown },
  ) {
    super(description, options?.cause === undefined ? undefined : { cause: options.cause });
    this.type = type;
    this.code = code;
    this.status = options?.status ?? STATUS[type];
  }

  get body(): OAuthErrorBody {
    return { error: this.type, error_description: this.message, code: this.code };
  }
}
