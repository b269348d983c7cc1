// verifyToken: checks a key-signed token (RFC 8725 practice) on node:crypto and returns its claims.
// Every cheap structural check runs before the key lookup and the HMAC, so junk costs almost nothing.
import { timingSafeEqual } from "node:crypto";
import { boundedMemo } from "./bounded-memo.js";
import { TokenError } from "./errors.js";
import { hmacKey, mac, MAC_LENGTH } from "./hmac.js";
import { DEFAULT_AUDIENCE } from "./sign.js";
import type {
  HmacAlgorithm,
  TokenClaims,
  TokenHeader,
  VerificationKey,
  VerifiedToken,
  VerifyOptions,
} from "./types.js";

const DEFAULT_MAX_LENGTH = 16_384;
const DEFAULT_LEEWAY_SECONDS = 30;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Verifies a token signed with an org key (by `signToken` here or in `@statebacked/token`) and
 * returns its key id, claims and the end user's `authContext`.
 *
 * Requires a `kid` the lookup knows, an allowed HMAC algorithm (HS256 only by default), a valid
 * signature, an `exp` in the future, an `aud` among the accepted audiences, and honours `nbf`.
 * Rejects `alg: "none"`, unknown `crit` headers, `iat` in the future, and malformed or oversized
 * tokens before any lookup or cryptography.
 *
 * @throws {@link TokenError} with a `code` such as `token-expired`, `token-signature-invalid`,
 *   `token-unknown-key`, `token-audience-invalid`, `token-malformed` or `token-algorithm-not-allowed`.
 *
 * @example
 * ```ts
 * import { verifyToken, TokenError } from "@backstate/token";
 *
 * const { authContext, key } = await verifyToken(bearerToken, {
 *   lookupKey: async (kid) => db.findKey(kid), // { secret: "sbsec_…", ...anything you need back }
 * });
 * console.log(authContext.sub);
 * ```
 */
export async function verifyToken<K extends VerificationKey>(
  token: string,
  options: VerifyOptions<K>,
): Promise<VerifiedToken<K>> {
  const settings = resolveOptions(options);
  const parsed = parseUnverified(token, settings);
  const found = options.lookupKey(parsed.keyId);
  // Await only a real promise: with a synchronous lookup (a cache hit) the whole check runs
  // without another trip through the microtask queue.
  const key = isPromiseLike(found) ? await found : found;
  return checkSigned(parsed, key, settings);
}

type Settings = ReturnType<typeof resolveOptions>;

type ParsedToken = {
  token: string;
  header: Readonly<Record<string, unknown>>;
  alg: HmacAlgorithm;
  keyId: string;
  signingInput: string;
  encodedPayload: string;
  encodedSignature: string;
};

/** Everything that can be checked without the key: size, shape, encoding, header. */
function parseUnverified(token: string, settings: Settings): ParsedToken {
  if (typeof token !== "string") throw new TokenError("token-malformed", "token must be a string");
  if (token.length > settings.maxLength) {
    throw new TokenError(
      "token-too-large",
      `token is longer than ${settings.maxLength} characters`,
    );
  }
  const firstDot = token.indexOf(".");
  const lastDot = token.lastIndexOf(".");
  if (firstDot < 0 || lastDot === firstDot || token.indexOf(".", firstDot + 1) !== lastDot) {
    throw new TokenError("token-malformed", "token must have three dot-separated parts");
  }
  const encodedHeader = token.slice(0, firstDot);
  const encodedPayload = token.slice(firstDot + 1, lastDot);
  const encodedSignature = token.slice(lastDot + 1);
  const header = decodeHeader(encodedHeader);
  if (!isBase64url(encodedPayload)) {
    throw new TokenError("token-malformed", "token payload must be base64url");
  }
  const algorithm = header.alg;
  if (
    typeof algorithm !== "string" ||
    !(settings.algorithms as readonly string[]).includes(algorithm)
  ) {
    throw new TokenError(
      "token-algorithm-not-allowed",
      `algorithm ${JSON.stringify(algorithm)} is not allowed; allowed: ${settings.algorithms.join(", ")}`,
    );
  }
  const alg = algorithm as HmacAlgorithm;
  if (header.crit !== undefined) {
    throw new TokenError(
      "token-critical-header-unsupported",
      "token declares critical header parameters this verifier does not understand",
    );
  }
  const keyId = header.kid;
  if (keyId === undefined) throw new TokenError("token-key-id-missing", "token header has no kid");
  if (typeof keyId !== "string" || !KEY_ID.test(keyId)) {
    throw new TokenError("token-key-id-invalid", "token kid is not a valid key id");
  }
  // A MAC has one length per algorithm; anything else cannot verify, so skip the lookup.
  const expectedSignatureLength = Math.ceil((MAC_LENGTH[alg] * 4) / 3);
  if (encodedSignature.length !== expectedSignatureLength || !isBase64url(encodedSignature)) {
    throw new TokenError("token-signature-invalid", "token signature is missing or malformed");
  }
  const signingInput = token.slice(0, lastDot);
  return { token, header, alg, keyId, signingInput, encodedPayload, encodedSignature };
}

/** The signature under the looked-up key, then the claims, which are trusted only after it. */
function checkSigned<K extends VerificationKey>(
  parsed: ParsedToken,
  key: K | undefined,
  settings: Settings,
): VerifiedToken<K> {
  if (key === undefined)
    throw new TokenError("token-unknown-key", "token is signed by an unknown key");
  const secret = key.secret;
  if (!(typeof secret === "string" || secret instanceof Uint8Array) || secret.length === 0) {
    throw new TokenError("token-key-invalid", "the key found for this token has no usable secret");
  }
  if (verifiedUnder.get(parsed.token) !== secret) {
    const expected = mac(parsed.alg, hmacKey(secret), parsed.signingInput);
    const given = decodeInto(signatureScratch, parsed.encodedSignature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new TokenError("token-signature-invalid", "token signature does not verify");
    }
    rememberVerified(parsed.token, secret);
  }

  const claims = checkClaims(decodeJsonObject(parsed.encodedPayload, "payload"), settings);
  return {
    keyId: parsed.keyId,
    key,
    header: parsed.header as TokenHeader,
    claims,
    authContext: authContextOf(claims),
  };
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === "function";
}

function resolveOptions<K extends VerificationKey>(options: VerifyOptions<K>) {
  if (typeof options?.lookupKey !== "function") {
    throw new TypeError("verifyToken needs options.lookupKey(keyId)");
  }
  const audiences: string | readonly string[] = options.audience ?? DEFAULT_AUDIENCE;
  const algorithms = options.algorithms ?? (["HS256"] as const);
  for (const algorithm of algorithms) {
    if (!(algorithm in MAC_LENGTH)) {
      throw new TypeError(`unsupported algorithm ${JSON.stringify(algorithm)}: use HS256/384/512`);
    }
  }
  return {
    algorithms,
    audiences,
    maxLength: options.maxLength ?? DEFAULT_MAX_LENGTH,
    ...timeSettings(options),
  };
}

type TimeOptions = Pick<
  VerifyOptions<VerificationKey>,
  "clock" | "leewaySeconds" | "expiredGraceSeconds"
>;

function timeSettings(options: TimeOptions) {
  const grace = options.expiredGraceSeconds ?? 0;
  // A NaN here would make every expired token pass: `exp <= now - NaN` is never true.
  if (!(Number.isFinite(grace) && grace >= 0)) {
    throw new TypeError("expiredGraceSeconds must be a finite number of seconds, 0 or more");
  }
  return {
    leeway: options.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS,
    grace,
    clock: options.clock ?? Date.now,
  };
}

function checkClaims(payload: Record<string, unknown>, settings: Settings): TokenClaims {
  checkTimes(timeClaimsOf(payload), settings);
  if (!audienceMatches(payload.aud, settings.audiences)) {
    throw new TokenError("token-audience-invalid", "token audience is missing or not accepted");
  }
  const act = payload.act;
  if (act !== undefined && !isPlainObject(act)) {
    throw new TokenError("token-claim-invalid", "token act claim must be an object");
  }
  if (payload.sub !== undefined && typeof payload.sub !== "string") {
    throw new TokenError("token-claim-invalid", "token sub claim must be a string");
  }
  return payload as TokenClaims;
}

/**
 * Checks the time claims of a token `verifyToken` accepted, again, by the rule it applied:
 * throws the {@link TokenError} it would throw now (`token-expired`, `token-not-yet-valid`,
 * `token-issued-in-future`). Of everything it checks, only these change with the clock, so a
 * verifier that keeps what it verified (for a given key) re-checks them alone.
 */
export function checkTimeClaims(
  claims: Readonly<Record<string, unknown>>,
  options: TimeOptions = {},
): void {
  checkTimes(timeClaimsOf(claims), timeSettings(options));
}

/** `exp` (required), `nbf` and `iat`, each a finite number when present. */
function timeClaimsOf(payload: Readonly<Record<string, unknown>>) {
  const exp = numericDate(payload, "exp");
  const nbf = numericDate(payload, "nbf");
  const iat = numericDate(payload, "iat");
  if (exp === undefined) throw new TokenError("token-expiry-missing", "token has no exp claim");
  return { exp, nbf, iat };
}

function checkTimes(
  { exp, nbf, iat }: Pick<TokenClaims, "exp" | "nbf" | "iat">,
  settings: ReturnType<typeof timeSettings>,
): void {
  const now = Math.floor(settings.clock() / 1000);
  const leeway = settings.leeway;
  if (exp <= now - leeway - settings.grace) {
    throw new TokenError("token-expired", "token has expired");
  }
  if (nbf !== undefined && nbf > now + leeway) {
    throw new TokenError("token-not-yet-valid", "token is not valid yet (nbf)");
  }
  if (iat !== undefined && iat > now + leeway) {
    throw new TokenError("token-issued-in-future", "token claims to be issued in the future (iat)");
  }
}

function numericDate(
  payload: Readonly<Record<string, unknown>>,
  claim: string,
): number | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TokenError("token-claim-invalid", `token ${claim} claim must be a number`);
  }
  return value;
}

function audienceMatches(aud: unknown, accepted: string | readonly string[]): boolean {
  if (!Array.isArray(aud)) return isAccepted(aud, accepted);
  for (const one of aud) if (isAccepted(one, accepted)) return true;
  return false;
}

function isAccepted(aud: unknown, accepted: string | readonly string[]): boolean {
  if (typeof aud !== "string") return false;
  return typeof accepted === "string" ? aud === accepted : accepted.includes(aud);
}

/** The claims about the end user: `act`, falling back to the top-level `sub` when `act` has none. */
function authContextOf(claims: TokenClaims): Record<string, unknown> {
  const act = claims.act ?? {};
  if (act.sub === undefined && claims.sub !== undefined) return { ...act, sub: claims.sub };
  return act;
}

// A client sends the same token with every request until it expires, and its signature is the
// costliest check. A token whose signature verified under a secret verifies under that secret
// again (HMAC is deterministic), so the secret is kept by token, for string secrets and tokens of
// ordinary size. Only the signature is skipped: the key is still looked up (a deleted key fails at
// once), and the claims are decoded and checked afresh, against the caller's options and clock.
const MAX_REMEMBERED_TOKENS = 1024;
const MAX_REMEMBERED_TOKEN_LENGTH = 2048;
const verifiedUnder = new Map<string, string>();

function rememberVerified(token: string, secret: string | Uint8Array): void {
  if (typeof secret !== "string" || token.length > MAX_REMEMBERED_TOKEN_LENGTH) return;
  if (verifiedUnder.size >= MAX_REMEMBERED_TOKENS) verifiedUnder.clear();
  verifiedUnder.set(token, secret);
}

// Tokens signed by one key share one header, so its decoded form is worth keeping (frozen, since
// callers receive it). A header that fails its checks throws, so only good ones are kept and a
// hit needs no re-check.
const decodeHeader = boundedMemo(256, (encoded): Readonly<Record<string, unknown>> => {
  if (!isBase64url(encoded))
    throw new TokenError("token-malformed", "token header must be base64url");
  return Object.freeze(decodeJsonObject(encoded, "header"));
});

function decodeJsonObject(encoded: string, part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeText(encoded));
  } catch (cause) {
    throw new TokenError("token-malformed", `token ${part} is not JSON`, { cause });
  }
  if (!isPlainObject(value)) {
    throw new TokenError("token-malformed", `token ${part} must be a JSON object`);
  }
  return value;
}

// Decoding into reused buffers spares two allocations per token; everything runs synchronously
// between the decode and the last use, so one buffer of each kind is enough.
const signatureScratch = Buffer.alloc(64);
let textScratch = Buffer.alloc(4096);

function decodeInto(scratch: Buffer, encoded: string): Buffer {
  return scratch.subarray(0, scratch.write(encoded, "base64url"));
}

function decodeText(encoded: string): string {
  const needed = Math.ceil((encoded.length * 3) / 4);
  if (needed > textScratch.length)
    textScratch = Buffer.alloc(Math.max(needed, textScratch.length * 2));
  return textScratch.toString("utf8", 0, textScratch.write(encoded, "base64url"));
}

function isBase64url(part: string): boolean {
  // A length of 1 mod 4 cannot come from any byte string: reject instead of decoding garbage.
  return BASE64URL.test(part) && part.length % 4 !== 1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
