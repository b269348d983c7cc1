// Interop with the real @statebacked/token@0.2.0: same header and claims for the same inputs, and
// tokens from either package verify with ours.
import assert from "node:assert/strict";
import { test } from "node:test";
import { signToken as upstreamSignToken } from "@statebacked/token";
import { signToken, verifyToken, type SigningOptions } from "../src/index.js";
import { KEY, decodePart } from "./helpers.js";

const lookupKey = (kid: string) =>
  kid === KEY.stateBackedKeyId ? { secret: KEY.stateBackedSecretKey } : undefined;

const inputs: { name: string; claims: Record<string, unknown>; options: SigningOptions }[] = [
  { name: "sub only, 7d", claims: { sub: "user-123" }, options: { expires: { in: "7d" } } },
  {
    name: "rich claims, 30m, issuer",
    claims: { sub: "u", roles: ["a", "b"], nested: { n: 1, ok: true }, email: "é@x.dev" },
    options: { expires: { in: "30m" }, issuer: "https://example.com/" },
  },
  { name: "fractional hours", claims: { sid: "s1" }, options: { expires: { in: "1.5 hours" } } },
  { name: "expires.at Date", claims: { sub: "u" }, options: { expires: { at: new Date(2e12) } } },
  { name: "expires.at seconds", claims: {}, options: { expires: { at: 1_999_999_999 } } },
  { name: "years", claims: { sub: "u" }, options: { expires: { in: "2y" } } },
];

for (const input of inputs) {
  test(`same header and claims as @statebacked/token: ${input.name}`, async () => {
    const ours = await signToken(KEY, input.claims, input.options);
    const theirs = await upstreamSignToken(KEY, input.claims, input.options);
    assert.deepEqual(decodePart(ours, 0), decodePart(theirs, 0));
    const ourClaims = decodePart(ours, 1);
    const theirClaims = decodePart(theirs, 1);
    assert.deepEqual(Object.keys(ourClaims), Object.keys(theirClaims), "same claims, same order");
    // iat and exp depend on the second each token was made in; everything else is identical.
    const skew = (ourClaims.iat as number) - (theirClaims.iat as number);
    assert.ok(Math.abs(skew) <= 1, `iat differs by ${skew}s`);
    assert.equal(
      (ourClaims.exp as number) - (theirClaims.exp as number),
      "at" in input.options.expires ? 0 : skew,
    );
    assert.deepEqual({ ...ourClaims, iat: 0, exp: 0 }, { ...theirClaims, iat: 0, exp: 0 });
    // When both land in the same second the tokens are byte-identical.
    if (skew === 0) assert.equal(ours, theirs);

    for (const token of [ours, theirs]) {
      const verified = await verifyToken(token, { lookupKey });
      assert.deepEqual(verified.authContext, input.claims);
    }
  });
}

test("a token from @statebacked/token with a tampered act does not verify", async () => {
  const theirs = await upstreamSignToken(KEY, { sub: "u" }, { expires: { in: "1h" } });
  const [h, , s] = theirs.split(".");
  const forged = Buffer.from(
    JSON.stringify({ ...decodePart(theirs, 1), act: { sub: "admin" } }),
  ).toString("base64url");
  await assert.rejects(verifyToken(`${h}.${forged}.${s}`, { lookupKey }), {
    code: "token-signature-invalid",
  });
});
