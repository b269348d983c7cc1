import assert from "node:assert/strict";
import { test } from "node:test";
import { KEY, NOW, NOW_MS, craftToken, validClaims, verifyOptions } from "../test/helpers.js";
import { TokenError } from "./errors.js";
import { signToken } from "./sign.js";
import { checkTimeClaims, verifyToken } from "./verify.js";

const header = { alg: "HS256", kid: KEY.stateBackedKeyId };

test("returns key id, the looked-up key, claims and authContext", async () => {
  const lookups: string[] = [];
  const claims = validClaims({ act: { sub: "u1", team: "a" } });
  const result = await verifyToken(craftToken(header, claims), verifyOptions(lookups));
  assert.equal(result.keyId, KEY.stateBackedKeyId);
  assert.deepEqual(result.key, { secret: KEY.stateBackedSecretKey });
  assert.deepEqual(result.claims, claims);
  assert.deepEqual(result.authContext, { sub: "u1", team: "a" });
  assert.deepEqual(lookups, [KEY.stateBackedKeyId]);
});

test("authContext falls back to the top-level sub only when act has none", async () => {
  const fallback = craftToken(header, validClaims({ act: {}, sub: "u2" }));
  assert.deepEqual((await verifyToken(fallback, verifyOptions())).authContext, { sub: "u2" });
  const own = craftToken(header, validClaims({ act: { sub: "u1" }, sub: "u2" }));
  assert.deepEqual((await verifyToken(own, verifyOptions())).authContext, { sub: "u1" });
  const noAct = craftToken(header, validClaims({ act: undefined }));
  assert.deepEqual((await verifyToken(noAct, verifyOptions())).authContext, {});
});

test("accepts tokens from signToken, including custom audiences when configured", async () => {
  const token = await signToken(KEY, { sub: "u" }, { expires: { in: "1h" }, audience: "mine" });
  const options = { ...verifyOptions(), clock: Date.now };
  await assert.rejects(verifyToken(token, options), { code: "token-audience-invalid" });
  const result = await verifyToken(token, { ...options, audience: ["other", "mine"] });
  assert.deepEqual(result.authContext, { sub: "u" });
});

test("an aud array is accepted when one entry matches", async () => {
  const token = craftToken(header, validClaims({ aud: ["x", "https://api.statebacked.dev/"] }));
  await verifyToken(token, verifyOptions());
});

test("leeway: just-expired passes within it and fails beyond it", async () => {
  const token = craftToken(header, validClaims({ exp: NOW - 20 }));
  await verifyToken(token, verifyOptions());
  await assert.rejects(verifyToken(token, { ...verifyOptions(), leewaySeconds: 10 }), {
    code: "token-expired",
  });
});

test("expiredGraceSeconds: an expired token passes for that long beyond the leeway, no longer", async () => {
  const hourAgo = craftToken(header, validClaims({ exp: NOW - 3600, iat: NOW - 7200 }));
  await assert.rejects(verifyToken(hourAgo, verifyOptions()), { code: "token-expired" });
  const graced = { ...verifyOptions(), leewaySeconds: 0, expiredGraceSeconds: 3601 };
  assert.equal((await verifyToken(hourAgo, graced)).claims.exp, NOW - 3600);
  // Exactly at the end of the grace, as at the end of the leeway, it has expired.
  await assert.rejects(verifyToken(hourAgo, { ...graced, expiredGraceSeconds: 3600 }), {
    code: "token-expired",
  });
  // The leeway adds to it.
  await verifyToken(hourAgo, { ...graced, leewaySeconds: 30, expiredGraceSeconds: 3590 });
});

test("expiredGraceSeconds leaves every other check as it is", async () => {
  const graced = { ...verifyOptions(), expiredGraceSeconds: 86_400 };
  const expired = { exp: NOW - 60 };
  const cases: Array<[string, string]> = [
    [craftToken(header, validClaims({ ...expired, nbf: NOW + 120 })), "token-not-yet-valid"],
    [craftToken(header, validClaims({ ...expired, iat: NOW + 120 })), "token-issued-in-future"],
    [craftToken(header, validClaims({ ...expired, aud: "elsewhere" })), "token-audience-invalid"],
    [
      craftToken(header, validClaims(expired), { secret: "sbsec_not_the_key" }),
      "token-signature-invalid",
    ],
    [craftToken({ ...header, kid: "sbk_other" }, validClaims(expired)), "token-unknown-key"],
  ];
  for (const [token, code] of cases) {
    await assert.rejects(verifyToken(token, graced), { code });
  }
  await verifyToken(craftToken(header, validClaims(expired)), graced);
});

test("HS384 and HS512 verify only when allowed", async () => {
  const token = craftToken({ ...header, alg: "HS512" }, validClaims(), { hash: "sha512" });
  await assert.rejects(verifyToken(token, verifyOptions()), {
    code: "token-algorithm-not-allowed",
  });
  const ok = await verifyToken(token, { ...verifyOptions(), algorithms: ["HS256", "HS512"] });
  assert.equal(ok.header.alg, "HS512");
});

test("errors from the key lookup propagate rather than pose as an unknown key", async () => {
  const failure = new Error("database down");
  const options = {
    ...verifyOptions(),
    lookupKey: () => Promise.reject(failure),
  };
  await assert.rejects(verifyToken(craftToken(header, validClaims()), options), failure);
});

test("misuse of the options is a TypeError", async () => {
  const token = craftToken(header, validClaims());
  await assert.rejects(verifyToken(token, {} as never), TypeError);
  await assert.rejects(
    verifyToken(token, { ...verifyOptions(), algorithms: ["RS256" as never] }),
    TypeError,
  );
  for (const expiredGraceSeconds of [-1, NaN, Infinity]) {
    await assert.rejects(
      verifyToken(token, { ...verifyOptions(), expiredGraceSeconds }),
      TypeError,
    );
  }
});

test("TokenError carries its code and is an Error", async () => {
  const token = craftToken(header, validClaims({ exp: NOW - 3600 }));
  const err = await verifyToken(token, { ...verifyOptions(), clock: () => NOW_MS }).catch(
    (e: unknown) => e,
  );
  assert.ok(err instanceof TokenError);
  assert.ok(err instanceof Error);
  assert.equal(err.code, "token-expired");
});

test("a token verified before is checked again in full, but for its signature", async () => {
  const token = craftToken(header, validClaims({ act: { sub: "u1" }, exp: NOW + 60 }));
  const first = await verifyToken(token, verifyOptions());
  // Decoded afresh every time: what one caller does with its claims no other caller sees.
  first.authContext.sub = "changed";
  first.claims.exp = 0;
  const again = await verifyToken(token, verifyOptions());
  assert.deepEqual(again.authContext, { sub: "u1" });
  assert.equal(again.claims.exp, NOW + 60);

  // The key is still looked up: a key deleted since fails at once.
  const gone = { ...verifyOptions(), lookupKey: () => undefined };
  await assert.rejects(verifyToken(token, gone), { code: "token-unknown-key" });
  // Under another secret (the same key id, another key), the signature is checked and fails.
  const other = { ...verifyOptions(), lookupKey: () => ({ secret: "sbsec_another" }) };
  await assert.rejects(verifyToken(token, other), { code: "token-signature-invalid" });
  // Time and the caller's own options still apply.
  const later = { ...verifyOptions(), clock: () => NOW_MS + 120_000, leewaySeconds: 0 };
  await assert.rejects(verifyToken(token, later), { code: "token-expired" });
  await assert.rejects(verifyToken(token, { ...verifyOptions(), audience: "elsewhere" }), {
    code: "token-audience-invalid",
  });
  await verifyToken(token, verifyOptions());
});

test("a forged signature never passes, however often its genuine twin verified", async () => {
  const token = craftToken(header, validClaims());
  await verifyToken(token, verifyOptions());
  await verifyToken(token, verifyOptions());
  const forged = `${token.slice(0, -2)}${token.endsWith("AA") ? "AB" : "AA"}`;
  await assert.rejects(verifyToken(forged, verifyOptions()), { code: "token-signature-invalid" });
  const otherPayload = craftToken(header, validClaims({ sub: "mallory" }), {
    secret: "sbsec_not_the_key",
  });
  await assert.rejects(verifyToken(otherPayload, verifyOptions()), {
    code: "token-signature-invalid",
  });
});

test("checkTimeClaims answers as verifyToken does for the same times, clock, leeway and grace", async () => {
  const offsets = [-7200, -100, -31, -30, -29, -1, 0, 1, 29, 30, 31, 100, 7200];
  const settings = [
    { leewaySeconds: 30, expiredGraceSeconds: 0 },
    { leewaySeconds: 0, expiredGraceSeconds: 3600 },
  ];
  let refused = 0;
  for (const exp of offsets)
    for (const nbf of [undefined, ...offsets])
      for (const iat of [undefined, -60, 0, 31, 120])
        for (const setting of settings) {
          const times = {
            exp: NOW + exp,
            ...(nbf === undefined ? {} : { nbf: NOW + nbf }),
            ...(iat === undefined ? {} : { iat: NOW + iat }),
          };
          const token = craftToken(header, validClaims({ iat: undefined, ...times }));
          const options = { ...verifyOptions(), ...setting };
          const verified = await verifyToken(token, options).then(
            () => "ok",
            (error: TokenError) => error.code,
          );
          let checked = "ok";
          try {
            checkTimeClaims(times, { ...setting, clock: options.clock });
          } catch (error) {
            checked = (error as TokenError).code;
          }
          assert.equal(checked, verified, JSON.stringify({ times, setting }));
          if (verified !== "ok") refused++;
        }
  // The grid reaches every time refusal, not only passes.
  assert.ok(refused > 100);
  assert.throws(
    () => checkTimeClaims({ exp: NOW }, { expiredGraceSeconds: Number.NaN }),
    TypeError,
  );
  // Claims that are not times are refused as verifyToken refuses them, not let through.
  assert.throws(() => checkTimeClaims({}), { code: "token-expiry-missing" });
  for (const claims of [{ exp: Number.NaN }, { exp: "soon" }, { exp: NOW + 60, nbf: "now" }])
    assert.throws(() => checkTimeClaims(claims, { clock: () => NOW_MS }), {
      code: "token-claim-invalid",
    });
});
