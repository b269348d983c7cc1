// The JWS algorithms an identity provider may allow, and which kind of key each needs: the HMAC
// ones a shared secret (the provider's `key`), the others public keys from its JWKS. A provider
// never mixes the two, so a token cannot be checked against the wrong kind of key (the classic
// "HS256 signed with the RSA public key" confusion has no key to be verified with).

export const SIGNING_ALGORITHMS = [
  "HS256",
  "HS384",
  "HS512",
  "PS256",
  "PS384",
  "PS512",
  "RS256",
  "RS384",
  "RS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export function isHmacAlgorithm(alg: string): boolean {
  return alg === "HS256" || alg === "HS384" || alg === "HS512";
}
