// signToken: the drop-in for @statebacked/token's signToken, byte-compatible in header and claims.
import { parseDurationSeconds } from "./duration.js";
import { boundedMemo } from "./bounded-memo.js";
import { hmacKey, mac } from "./hmac.js";
import type { EndUserClaims, Key, SigningOptions } from "./types.js";

/** The audience every State Backed compatible API accepts; @statebacked/token hard-codes it. */
export const DEFAULT_AUDIENCE = "https://api.statebacked.dev/";

/**
 * Signs an end-user token with a Backstate (or State Backed) key.
 *
 * The claims become the token's `act` claim, which the server hands to your machines' `allowRead`
 * and `allowWrite` as `authContext`. Include a `sub` with the end user's id. Sign only on a trusted
 * server: the secret must never reach a browser.
 *
 * @param key - The key id (`sbk_…`) and secret (`sbsec_…`) to sign with.
 * @param claims - The end user's claims, a plain object; `sub` should be their id.
 * @param options - `expires.in` (like `"7d"`) or `expires.at` (a Date or epoch seconds; wins when both
 *   are set), and optionally `issuer` and `audience`.
 * @returns A compact JWS: header `{alg:"HS256", kid}`, claims `act`, `aud`, `exp`, `iss`, `iat`.
 * @throws TypeError when the key, claims or options are unusable, rather than minting a token the
 *   server would refuse later.
 *
 * @example
 * ```ts
 * import { signToken } from "@backstate/token";
 *
 * const token = await signToken(
 *   { stateBackedKeyId: process.env.SB_KEY_ID!, stateBackedSecretKey: process.env.SB_SECRET!  },
 *   { sub: "user-123", roles: ["editor"] },
 *   { expires: { in: "7d" }, issuer: "https://example.com/" },
 * );
 * ```
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async is the original's contract
export async function signToken(
  key: Key,
  claims: EndUserClaims,
  options: SigningOptions,
): Promise<string> {
  // Async like the original, so bad input surfaces as a rejected promise, not a synchronous throw.
  return signTokenSync(key, claims, options);
}

function signTokenSync(key: Key, claims: EndUserClaims, options: SigningOptions): string {
  const { keyId, secret } = checkKey(key);
  checkClaims(claims);
  if (!isObject(options)) throw new TypeError("options must be an object with `expires`");
  if (options.issuer !== undefined && typeof options.issuer !== "string") {
    throw new TypeError("options.issuer must be a string");
  }
  if (
    options.audience !== undefined &&
    (typeof options.audience !== "string" || !options.audience)
  ) {
    throw new TypeError("options.audience must be a non-empty string");
  }

  const issuedAt = Math.floor(Date.now() / 1000);
  const expiresAt = expiryFrom(options.expires, issuedAt);
  // Claim order matches @statebacked/token (act, aud, exp, iss, iat) so both produce identical JSON.
  const payload = {
    act: claims,
    aud: options.audience ?? DEFAULT_AUDIENCE,
    exp: expiresAt,
    iss: options.issuer || `https://${keyId}.client.statebacked.dev/`,
    iat: issuedAt,
  };
  const signingInput = `${encodedHeaderFor(keyId)}.${encodeJson(payload)}`;
  const signature = mac("HS256", hmacKey(secret), signingInput).toString("base64url");
  return `${signingInput}.${signature}`;
}

// Every token of one key has the same header; encode it once per key id.
const encodedHeaderFor = boundedMemo(1024, (keyId) => encodeJson({ alg: "HS256", kid: keyId }));

function checkKey(key: Key): { keyId: string; secret: string } {
  if (!isObject(key)) {
    throw new TypeError("key must be { stateBackedKeyId, stateBackedSecretKey }");
  }
  const { stateBackedKeyId: keyId, stateBackedSecretKey: secret } = key;
  if (typeof keyId !== "string" || keyId.length === 0) {
    throw new TypeError("key.stateBackedKeyId must be a non-empty string (sbk_…)");
  }
  if (typeof secret !== "string" || secret.length === 0) {
    throw new TypeError("key.stateBackedSecretKey must be a non-empty string (sbsec_…)");
  }
  return { keyId, secret };
}

function checkClaims(claims: unknown): void {
  if (!isObject(claims) || Array.isArray(claims)) {
    throw new TypeError("claims must be a plain object, such as { sub: 'user-123' }");
  }
  const proto = Object.getPrototypeOf(claims) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError("claims must be a plain object, not a class instance");
  }
}

function expiryFrom(expires: SigningOptions["expires"] | undefined, issuedAt: number): number {
  if (!isObject(expires)) {
    throw new TypeError('options.expires is required: { in: "7d" } or { at: Date | epochSeconds }');
  }
  if ("at" in expires) {
    const at = expires.at;
    if (at instanceof Date) {
      const ms = at.getTime();
      if (!Number.isFinite(ms)) throw new TypeError("options.expires.at is an invalid Date");
      return Math.floor(ms / 1000);
    }
    if (typeof at !== "number" || !Number.isFinite(at)) {
      throw new TypeError("options.expires.at must be a Date or a finite number of epoch seconds");
    }
    return at;
  }
  if ("in" in expires) {
    if (typeof expires.in !== "string") {
      throw new TypeError('options.expires.in must be a duration string such as "7d"');
    }
    return issuedAt + parseDurationSeconds(expires.in);
  }
  throw new TypeError(
    'options.expires needs `in` (such as "7d") or `at` (a Date or epoch seconds)',
  );
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
