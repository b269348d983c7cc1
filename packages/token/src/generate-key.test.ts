import assert from "node:assert/strict";
import { test } from "node:test";
import { generateKey } from "./generate-key.js";
import { signToken } from "./sign.js";
import { verifyToken } from "./verify.js";

test("generates sbk_/sbsec_ keys with 128/256 random bits", () => {
  const key = generateKey();
  assert.match(key.stateBackedKeyId, /^sbk_[A-Za-z0-9_-]{22}$/);
  assert.match(key.stateBackedSecretKey, /^sbsec_[A-Za-z0-9_-]{43}$/);
  const secretBytes = Buffer.from(key.stateBackedSecretKey.slice("sbsec_".length), "base64url");
  assert.equal(secretBytes.length, 32);
});

test("never repeats over many keys", () => {
  const ids = new Set<string>();
  const secrets = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const key = generateKey();
    ids.add(key.stateBackedKeyId);
    secrets.add(key.stateBackedSecretKey);
  }
  assert.equal(ids.size, 2000);
  assert.equal(secrets.size, 2000);
});

test("a generated key signs tokens that verify", async () => {
  const key = generateKey();
  const token = await signToken(key, { sub: "u" }, { expires: { in: "1h" } });
  const verified = await verifyToken(token, {
    lookupKey: (kid) =>
      kid === key.stateBackedKeyId ? { secret: key.stateBackedSecretKey } : undefined,
  });
  assert.equal(verified.keyId, key.stateBackedKeyId);
  assert.deepEqual(verified.authContext, { sub: "u" });
});
