import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { KEY, decodePart } from "../test/helpers.js";
import { signToken } from "./sign.js";
import type { SigningOptions } from "./types.js";

test("produces the @statebacked/token header and claims", async () => {
  const before = Math.floor(Date.now() / 1000);
  const token = await signToken(KEY, { sub: "user-1", role: "x" }, { expires: { in: "7d" } });
  const after = Math.floor(Date.now() / 1000);
  const header = decodePart(token, 0);
  const claims = decodePart(token, 1);
  assert.deepEqual(header, { alg: "HS256", kid: KEY.stateBackedKeyId });
  assert.deepEqual(Object.keys(claims), ["act", "aud", "exp", "iss", "iat"]);
  assert.deepEqual(claims.act, { sub: "user-1", role: "x" });
  assert.equal(claims.aud, "https://api.statebacked.dev/");
  assert.equal(claims.iss, `https://${KEY.stateBackedKeyId}.client.statebacked.dev/`);
  const iat = claims.iat as number;
  assert.ok(iat >= before && iat <= after);
  assert.equal(claims.exp, iat + 7 * 86400);
});

test("signs with the UTF-8 bytes of the whole sbsec_ secret", async () => {
  const token = await signToken(KEY, { sub: "u" }, { expires: { in: "1h" } });
  const [h, p, s] = token.split(".");
  const expected = createHmac("sha256", Buffer.from(KEY.stateBackedSecretKey, "utf8"))
    .update(`${h}.${p}`)
    .digest("base64url");
  assert.equal(s, expected);
});

test("expires.at takes a Date or epoch seconds and wins over expires.in", async () => {
  const at = new Date("2030-01-01T00:00:00.900Z");
  const fromDate = await signToken(KEY, {}, { expires: { at } });
  assert.equal(decodePart(fromDate, 1).exp, Math.floor(at.getTime() / 1000));
  const fromSeconds = await signToken(KEY, {}, { expires: { at: 1_900_000_000 } });
  assert.equal(decodePart(fromSeconds, 1).exp, 1_900_000_000);
  const both = { expires: { at: 1_900_000_000, in: "1m" } } as unknown as SigningOptions;
  assert.equal(decodePart(await signToken(KEY, {}, both), 1).exp, 1_900_000_000);
});

test("issuer and audience options override the defaults", async () => {
  const token = await signToken(
    KEY,
    { sub: "u" },
    { expires: { in: "1h" }, issuer: "https://me.example/", audience: "https://self.host/" },
  );
  const claims = decodePart(token, 1);
  assert.equal(claims.iss, "https://me.example/");
  assert.equal(claims.aud, "https://self.host/");
});

test("rejects bad input with a TypeError instead of minting a broken token", async () => {
  const ok: SigningOptions = { expires: { in: "1h" } };
  const cases: [string, () => Promise<string>][] = [
    ["no expires", () => signToken(KEY, {}, {} as SigningOptions)],
    ["no options", () => signToken(KEY, {}, undefined as unknown as SigningOptions)],
    ["expires without in/at", () => signToken(KEY, {}, { expires: {} } as SigningOptions)],
    [
      "unparseable duration",
      () => signToken(KEY, {}, { expires: { in: "soon" } } as unknown as SigningOptions),
    ],
    ["invalid Date", () => signToken(KEY, {}, { expires: { at: new Date("nope") } })],
    ["NaN seconds", () => signToken(KEY, {}, { expires: { at: Number.NaN } })],
    ["claims array", () => signToken(KEY, [], ok)],
    ["claims string", () => signToken(KEY, "sub" as unknown as object, ok)],
    ["claims null", () => signToken(KEY, null as unknown as object, ok)],
    ["claims class instance", () => signToken(KEY, new Date(), ok)],
    ["empty key id", () => signToken({ ...KEY, stateBackedKeyId: "" }, {}, ok)],
    ["empty secret", () => signToken({ ...KEY, stateBackedSecretKey: "" }, {}, ok)],
    ["missing key", () => signToken(undefined as unknown as typeof KEY, {}, ok)],
    ["empty audience", () => signToken(KEY, {}, { ...ok, audience: "" })],
  ];
  for (const [name, call] of cases) {
    await assert.rejects(call, TypeError, name);
  }
});

test("claims with a null prototype are plain enough", async () => {
  const claims = Object.assign(Object.create(null) as object, { sub: "u" });
  const token = await signToken(KEY, claims, { expires: { in: "1h" } });
  assert.deepEqual(decodePart(token, 1).act, { sub: "u" });
});
