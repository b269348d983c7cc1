// The public types of the token package; the signing types match @statebacked/token@0.2.0 exactly.

/**
 * The key to sign with: a key id (`sbk_…`) and its secret (`sbsec_…`), as `backstate keys create`
 * (or State Backed's `smply keys create`) prints them.
 */
export type Key = {
  /** The id of the signing key, sent as the token's `kid`. */
  stateBackedKeyId: string;
  /** The secret of that key; its UTF-8 bytes are the HMAC key. */
  stateBackedSecretKey: string;
};

export type Seconds = "s" | "sec" | "secs" | "second" | "seconds";
export type Minutes = "m" | "min" | "mins" | "minute" | "minutes";
export type Hours = "h" | "hr" | "hrs" | "hour" | "hours";
export type Days = "d" | "day" | "days";
export type Weeks = "w" | "week" | "weeks";
export type Years = "y" | "yr" | "yrs" | "year" | "years";
export type TimeSpecifier = Seconds | Minutes | Hours | Days | Weeks | Years;

/** Seconds since the Unix epoch. */
export type EpochSeconds = number;

/** How to sign a token. */
export type SigningOptions = {
  /**
   * When the token expires: `in` a duration such as `"7d"` or `"30m"`, or `at` a Date or epoch
   * seconds. When both are given, `at` wins.
   */
  expires:
    | {
        /** A duration from now, like "7d" or "30m". */
        in: `${number}${TimeSpecifier}`;
      }
    | {
        /** A Date or a number of seconds since the epoch. */
        at: Date | EpochSeconds;
      };
  /** The token's `iss`. Defaults to `https://<keyId>.client.statebacked.dev/`. */
  issuer?: string;
  /**
   * The token's `aud`. Defaults to `https://api.statebacked.dev/`, the audience every State Backed
   * compatible server accepts. Backstate extension; not in @statebacked/token.
   */
  audience?: string;
};

/** End-user claims: become the token's `act` and, on the server, the machines' `authContext`. */
export type EndUserClaims = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- same shape as @statebacked/token
  [key: string]: any;
  sub?: string | undefined;
};

/** The HMAC algorithms `verifyToken` can check. Key tokens are symmetric, so nothing else applies. */
export type HmacAlgorithm = "HS256" | "HS384" | "HS512";

/** What a key lookup gives `verifyToken`: the secret, as the `sbsec_…` string or raw bytes. */
export type VerificationKey = {
  /** A string is used as its UTF-8 bytes, the way `signToken` uses it. */
  secret: string | Uint8Array;
};

/** Options for {@link verifyToken}. */
export type VerifyOptions<K extends VerificationKey> = {
  /**
   * Finds the key for a token's `kid`; `undefined` (or a rejected promise) when there is none.
   * Called only after the token's structure and header passed every check, and only with a `kid`
   * matching `^[A-Za-z0-9_-]{1,128}$`. Whatever it returns comes back as `key` in the result.
   */
  lookupKey: (keyId: string) => K | undefined | Promise<K | undefined>;
  /** Accepted audiences; the token's `aud` must name one. Default `["https://api.statebacked.dev/"]`. */
  audience?: string | readonly string[];
  /** Allowed algorithms. Default `["HS256"]`. */
  algorithms?: readonly HmacAlgorithm[];
  /** Current time in milliseconds. Default `Date.now`. */
  clock?: () => number;
  /** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Default 30. */
  leewaySeconds?: number;
  /**
   * How long after its `exp` (on top of `leewaySeconds`) a token still passes, in seconds.
   * Default 0. For a verifier whose client cannot fetch a fresh token, such as a WebSocket that
   * reconnects with the URL it first opened; `nbf` and `iat` keep the plain leeway.
   */
  expiredGraceSeconds?: number;
  /** Longest token accepted, in characters. Default 16,384. */
  maxLength?: number;
};

/** The JOSE header of a verified token. */
export type TokenHeader = {
  alg: HmacAlgorithm;
  kid: string;
  [key: string]: unknown;
};

/** The registered and private claims of a verified token. */
export type TokenClaims = {
  act?: Record<string, unknown>;
  aud?: string | string[];
  exp: number;
  iat?: number;
  nbf?: number;
  iss?: string;
  sub?: string;
  [key: string]: unknown;
};

/** A token that passed every check. */
export type VerifiedToken<K extends VerificationKey> = {
  /** The `kid` the token was signed with. */
  keyId: string;
  /** What `lookupKey` returned for that id. */
  key: K;
  header: TokenHeader;
  claims: TokenClaims;
  /** The end user's claims: `act`, with the top-level `sub` filled in when `act` has none. */
  authContext: Record<string, unknown>;
};
