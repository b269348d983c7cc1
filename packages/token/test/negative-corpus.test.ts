// RFC 8725 (JWT best current practice) negative corpus: each hostile or broken token is refused
// with the right code, and the cheap ones are refused before the key lookup runs.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { verifyToken, type TokenErrorCode } from "../src/index.js";
import { KEY, NOW, b64json, craftToken, validClaims, verifyOptions } from "./helpers.js";

const header = { alg: "HS256", kid: KEY.stateBackedKeyId };
const good = craftToken(header, validClaims());
const [goodHeader, goodPayload, goodSignature] = good.split(".") as [string, string, string];
const publicKeyPem = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .publicKey.export({ type: "spki", format: "pem" })
  .toString();

type Case = { name: string; token: string; code: TokenErrorCode; looksUpKey?: boolean };

const cases: Case[] = [
  {
    name: "alg none, no signature",
    token: `${b64json({ alg: "none" })}.${goodPayload}.`,
    code: "token-algorithm-not-allowed",
  },
  {
    name: "alg none with kid",
    token: `${b64json({ alg: "none", kid: KEY.stateBackedKeyId })}.${goodPayload}.`,
    code: "token-algorithm-not-allowed",
  },
  {
    name: "alg None (case games)",
    token: craftToken({ ...header, alg: "None" }, validClaims()),
    code: "token-algorithm-not-allowed",
  },
  {
    name: "HS384 when only HS256 is allowed",
    token: craftToken({ ...header, alg: "HS384" }, validClaims(), { hash: "sha384" }),
    code: "token-algorithm-not-allowed",
  },
  {
    name: "HS512 when only HS256 is allowed",
    token: craftToken({ ...header, alg: "HS512" }, validClaims(), { hash: "sha512" }),
    code: "token-algorithm-not-allowed",
  },
  {
    name: "RS256 header",
    token: craftToken({ ...header, alg: "RS256" }, validClaims()),
    code: "token-algorithm-not-allowed",
  },
  {
    name: "alg missing",
    token: craftToken({ kid: KEY.stateBackedKeyId }, validClaims()),
    code: "token-algorithm-not-allowed",
  },
  {
    name: "alg not a string",
    token: craftToken({ ...header, alg: ["HS256"] }, validClaims()),
    code: "token-algorithm-not-allowed",
  },
  {
    name: "public key used as the HMAC secret (key confusion)",
    token: craftToken(header, validClaims(), { secret: publicKeyPem }),
    code: "token-signature-invalid",
    looksUpKey: true,
  },
  {
    name: "unknown crit header",
    token: craftToken({ ...header, crit: ["exp"], exp: 1 }, validClaims()),
    code: "token-critical-header-unsupported",
  },
  {
    name: "b64=false crit",
    token: craftToken({ ...header, crit: ["b64"], b64: false }, validClaims()),
    code: "token-critical-header-unsupported",
  },
  {
    name: "kid missing",
    token: craftToken({ alg: "HS256" }, validClaims()),
    code: "token-key-id-missing",
  },
  {
    name: "kid unknown",
    token: craftToken({ ...header, kid: "sbk_doesNotExist" }, validClaims()),
    code: "token-unknown-key",
    looksUpKey: true,
  },
  {
    name: "kid with a path",
    token: craftToken({ ...header, kid: "../../etc/passwd" }, validClaims()),
    code: "token-key-id-invalid",
  },
  {
    name: "kid with SQL",
    token: craftToken({ ...header, kid: "x' OR '1'='1" }, validClaims()),
    code: "token-key-id-invalid",
  },
  {
    name: "kid not a string",
    token: craftToken({ ...header, kid: 42 }, validClaims()),
    code: "token-key-id-invalid",
  },
  {
    name: "kid too long",
    token: craftToken({ ...header, kid: "k".repeat(129) }, validClaims()),
    code: "token-key-id-invalid",
  },
  {
    name: "expired",
    token: craftToken(header, validClaims({ exp: NOW - 3600 })),
    code: "token-expired",
    looksUpKey: true,
  },
  {
    name: "exp missing",
    token: craftToken(header, validClaims({ exp: undefined })),
    code: "token-expiry-missing",
    looksUpKey: true,
  },
  {
    name: "exp a string",
    token: craftToken(header, validClaims({ exp: String(NOW + 60) })),
    code: "token-claim-invalid",
    looksUpKey: true,
  },
  {
    name: "nbf in the future",
    token: craftToken(header, validClaims({ nbf: NOW + 3600 })),
    code: "token-not-yet-valid",
    looksUpKey: true,
  },
  {
    name: "iat far in the future",
    token: craftToken(header, validClaims({ iat: NOW + 86_400 })),
    code: "token-issued-in-future",
    looksUpKey: true,
  },
  {
    name: "wrong aud",
    token: craftToken(header, validClaims({ aud: "https://evil.example/" })),
    code: "token-audience-invalid",
    looksUpKey: true,
  },
  {
    name: "missing aud",
    token: craftToken(header, validClaims({ aud: undefined })),
    code: "token-audience-invalid",
    looksUpKey: true,
  },
  {
    name: "aud array without a match",
    token: craftToken(header, validClaims({ aud: ["a", "b"] })),
    code: "token-audience-invalid",
    looksUpKey: true,
  },
  {
    name: "act not an object",
    token: craftToken(header, validClaims({ act: "admin" })),
    code: "token-claim-invalid",
    looksUpKey: true,
  },
  {
    name: "payload tampered after signing",
    token: `${goodHeader}.${b64json(validClaims({ act: { sub: "admin" } }))}.${goodSignature}`,
    code: "token-signature-invalid",
    looksUpKey: true,
  },
  {
    name: "header tampered after signing",
    token: `${b64json({ ...header, typ: "JWT" })}.${goodPayload}.${goodSignature}`,
    code: "token-signature-invalid",
    looksUpKey: true,
  },
  {
    name: "signature stripped",
    token: `${goodHeader}.${goodPayload}.`,
    code: "token-signature-invalid",
  },
  { name: "signature truncated", token: good.slice(0, -5), code: "token-signature-invalid" },
  {
    name: "signature of another key",
    token: craftToken(header, validClaims(), { secret: "sbsec_other" }),
    code: "token-signature-invalid",
    looksUpKey: true,
  },
  {
    name: "signature with a non-base64url character",
    token: `${good.slice(0, -1)}+`,
    code: "token-signature-invalid",
  },
  {
    name: "header with non-base64url characters",
    token: `${goodHeader}=.${goodPayload}.${goodSignature}`,
    code: "token-malformed",
  },
  {
    name: "payload with a space",
    token: `${goodHeader}.${goodPayload.slice(0, 8)} ${goodPayload.slice(8)}.${goodSignature}`,
    code: "token-malformed",
  },
  {
    name: "payload in standard base64",
    token: `${goodHeader}.${goodPayload.replace(/_/g, "/").replace(/-/g, "+")}/+.${goodSignature}`,
    code: "token-malformed",
  },
  {
    name: "header not JSON",
    token: `${Buffer.from("{alg:HS256").toString("base64url")}.${goodPayload}.${goodSignature}`,
    code: "token-malformed",
  },
  {
    name: "payload not JSON",
    token: craftToken(header, null, { rawPayload: Buffer.from("not json").toString("base64url") }),
    code: "token-malformed",
    looksUpKey: true,
  },
  {
    name: "payload a JSON array",
    token: craftToken(header, [validClaims()]),
    code: "token-malformed",
    looksUpKey: true,
  },
  {
    name: "payload a JSON string",
    token: craftToken(header, "claims"),
    code: "token-malformed",
    looksUpKey: true,
  },
  {
    name: "header a JSON array",
    token: `${b64json([header])}.${goodPayload}.${goodSignature}`,
    code: "token-malformed",
  },
  { name: "two parts", token: `${goodHeader}.${goodPayload}`, code: "token-malformed" },
  { name: "four parts", token: `${good}.${goodSignature}`, code: "token-malformed" },
  { name: "JWE-shaped (five parts)", token: "a.b.c.d.e", code: "token-malformed" },
  { name: "empty string", token: "", code: "token-malformed" },
  { name: "empty header", token: `.${goodPayload}.${goodSignature}`, code: "token-malformed" },
  {
    name: "impossible base64url length",
    token: `AAAAA.${goodPayload}.${goodSignature}`,
    code: "token-malformed",
  },
  {
    name: "huge token",
    token: craftToken(header, validClaims({ act: { blob: "x".repeat(100_000) } })),
    code: "token-too-large",
  },
];

for (const c of cases) {
  test(`refuses: ${c.name} → ${c.code}`, async () => {
    const lookups: string[] = [];
    await assert.rejects(verifyToken(c.token, verifyOptions(lookups)), (err: unknown) => {
      assert.equal((err as { code?: string }).code, c.code, (err as Error).message);
      return true;
    });
    // Cheap checks come first: only cases that need the key may reach the lookup.
    assert.equal(lookups.length > 0, c.looksUpKey === true, "key lookup reached");
  });
}

test("the untampered token of this corpus verifies (the corpus is not vacuous)", async () => {
  const result = await verifyToken(good, verifyOptions());
  assert.deepEqual(result.authContext, { sub: "user-1" });
});

test("a huge token is refused before it is even split", async () => {
  const huge = "a".repeat(10_000_000);
  await assert.rejects(verifyToken(huge, verifyOptions()), { code: "token-too-large" });
});
