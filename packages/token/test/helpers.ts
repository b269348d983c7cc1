// Shared helpers for the token tests: hand-built JWTs, so tests can craft what signToken never would.
import { createHmac } from "node:crypto";
import type { Key } from "../src/index.js";

export const KEY: Key = {
  stateBackedKeyId: "sbk_nXzdtCxESemgtxS5JX-LrA",
  stateBackedSecretKey: "sbsec_w1tnaQ5Zx3Pq0u9mY2kzS4oD7hJtV6bL8cE1fG0aR3s",
};

export const NOW_MS = Date.UTC(2026, 10, 26, 12, 0, 0);
export const NOW = NOW_MS / 1000;

export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** A compact JWS over arbitrary header and payload, signed with HMAC (or not signed at all). */
export function craftToken(
  header: unknown,
  payload: unknown,
  options: { secret?: string | Buffer; hash?: string; rawPayload?: string } = {},
): string {
  const encodedPayload = options.rawPayload ?? b64json(payload);
  const signingInput = `${b64json(header)}.${encodedPayload}`;
  const secret = options.secret ?? KEY.stateBackedSecretKey;
  const signature = createHmac(options.hash ?? "sha256", secret)
    .update(signingInput)
    .digest("base64url");
  return `${signingInput}.${signature}`;
}

export function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    act: { sub: "user-1" },
    aud: "https://api.statebacked.dev/",
    exp: NOW + 3600,
    iss: "https://example.com/",
    iat: NOW - 10,
    ...overrides,
  };
}

export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  const part = token.split(".")[index] ?? "";
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** The verify options every test starts from: the test key, a fixed clock. */
export function verifyOptions(lookups: string[] = []) {
  return {
    lookupKey: (kid: string) => {
      lookups.push(kid);
      return kid === KEY.stateBackedKeyId ? { secret: KEY.stateBackedSecretKey } : undefined;
    },
    clock: () => NOW_MS,
  };
}
