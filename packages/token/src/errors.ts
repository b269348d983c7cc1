// Coded errors for token verification: the server maps each code to a 401 with the reason.

/** Every reason a token can be refused. Stable strings: clients and logs depend on them. */
export type TokenErrorCode =
  | "token-too-large"
  | "token-malformed"
  | "token-algorithm-not-allowed"
  | "token-critical-header-unsupported"
  | "token-key-id-missing"
  | "token-key-id-invalid"
  | "token-unknown-key"
  | "token-key-invalid"
  | "token-signature-invalid"
  | "token-claim-invalid"
  | "token-expiry-missing"
  | "token-expired"
  | "token-not-yet-valid"
  | "token-issued-in-future"
  | "token-audience-invalid";

/**
 * A token was refused. `code` says why in a stable, machine-readable form; `message` says it for people.
 *
 * @example
 * ```ts
 * try {
 *   await verifyToken(token, options);
 * } catch (err) {
 *   if (err instanceof TokenError && err.code === "token-expired") refreshAndRetry();
 * }
 * ```
 */
export class TokenError extends Error {
  override readonly name = "TokenError";
  readonly code: TokenErrorCode;

  constructor(code: TokenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
