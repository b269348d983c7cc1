// generateKey: a fresh key id and secret from the system CSPRNG.
import { randomBytes } from "node:crypto";
import type { Key } from "./types.js";

/**
 * Creates a new signing key: an id `sbk_` + 128 random bits and a secret `sbsec_` + 256 random bits,
 * both base64url, from the operating system's CSPRNG. The result is a {@link Key}, ready for
 * `signToken`. Store the secret as a secret: whoever holds it can mint any end user's token.
 *
 * @example
 * ```ts
 * import { generateKey, signToken } from "@backstate/token";
 *
 * const key = generateKey(); // { stateBackedKeyId: "sbk_…", stateBackedSecretKey: "sbsec_…" }
 * const token = await signToken(key, { sub: "user-1" }, { expires: { in: "1h" } });
 * ```
 */
export function generateKey(): Key {
  return {
    stateBackedKeyId: `sbk_${randomBytes(16).toString("base64url")}`,
    stateBackedSecretKey: `sbsec_${randomBytes(32).toString("base64url")}`,
  };
}
