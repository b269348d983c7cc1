// HMAC signing for the HS* JWS algorithms on node:crypto. Key objects are cached per secret so the
// hot path does not re-import the same key for every token.
import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { boundedMemo } from "./bounded-memo.js";
import type { HmacAlgorithm } from "./types.js";

export const HASH_FOR_ALGORITHM: Readonly<Record<HmacAlgorithm, string>> = {
  HS256: "sha256",
  HS384: "sha384",
  HS512: "sha512",
};

/** Length in bytes of each algorithm's MAC; a signature of any other length is refused unread. */
export const MAC_LENGTH: Readonly<Record<HmacAlgorithm, number>> = {
  HS256: 32,
  HS384: 48,
  HS512: 64,
};

const keyFromText = boundedMemo(1024, (secret) => createSecretKey(Buffer.from(secret, "utf8")));

/** The key object for a secret given as a string (its UTF-8 bytes) or bytes. */
export function hmacKey(secret: string | Uint8Array): KeyObject {
  return typeof secret === "string" ? keyFromText(secret) : createSecretKey(secret);
}

/** The MAC of `signingInput` (the ASCII `header.payload` text) under `key`. */
export function mac(algorithm: HmacAlgorithm, key: KeyObject, signingInput: string): Buffer {
  return createHmac(HASH_FOR_ALGORITHM[algorithm], key).update(signingInput, "latin1").digest();
}
