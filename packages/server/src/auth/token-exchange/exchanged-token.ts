// The token POST /tokens answers: the same header and claims as @backstate/token's signToken
// (`{alg:"HS256", kid}`; `act`, `aud`, `exp`, `iss`, `iat`), signed the same way (HMAC-SHA256 with
// the UTF-8 bytes of the key's secret), so the Authenticator verifies it like any key token. One
// difference, which is why this does not call signToken: the claims JSON is kept ASCII, and free
// of `>`, `?` and `~`, by writing those characters as \u escapes (the same JSON to any parser).
// The official client reads a token's expiry with `atob`, which refuses base64url's `-` and `_`;
// claims text of only such characters encodes without either (its base64url is plain base64), so
// the client always learns when to refresh, whatever names and emails the claims carry.
import { createHmac } from "node:crypto";
import { DEFAULT_AUDIENCE } from "@backstate/token";
import type { JsonObject } from "../../runtime/adapter-protocol.js";

export type ExchangedTokenInput = {
  keyId: string;
  secret: string;
  act: JsonObject;
  issuer: string;
  issuedAt: number;
  expiresAt: number;
};

export function signExchangedToken(input: ExchangedTokenInput): string {
  const header = encode({ alg: "HS256", kid: input.keyId });
  // Claim order as signToken's (act, aud, exp, iss, iat).
  const claims = encode({
    act: input.act,
    aud: DEFAULT_AUDIENCE,
    exp: input.expiresAt,
    iss: input.issuer,
    iat: input.issuedAt,
  });
  const signature = createHmac("sha256", Buffer.from(input.secret, "utf8"))
    .update(`${header}.${claims}`, "latin1")
    .digest("base64url");
  return `${header}.${claims}.${signature}`;
}

/** JSON text with only characters whose base64 never needs `+`/`/` (so base64url `-`/`_`). */
export function atobSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x3d\x40-\x7d]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function encode(value: unknown): string {
  return Buffer.from(atobSafeJson(value), "latin1").toString("base64url");
}
