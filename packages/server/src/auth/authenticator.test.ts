// The grace for expired tokens (the realtime endpoint's): verify and checkExpiry apply one rule,
// on the authenticator's clock, and the grace forgives the expiry alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import { signToken } from "@backstate/token";
import type { KeyRecord, Store } from "../store/store.js";
import { Authenticator } from "./authenticator.js";

const KEY = {
  id: "sbk_graceTestKey000000000",
  orgId: "org_grace",
  name: "grace",
  secret: "sbsec_grace-test-secret-0123456789abcdef",
  scopes: ["state.read"],
  createdAt: 0,
} satisfies KeyRecord;

// signToken stamps `iat` with the real time: the authenticator's clock must not be before it.
const NOW = Math.floor(Date.now() / 1000) + 60;
const DAY = 86_400;

const authenticator = new Authenticator({
  store: {
    getKey: (id: string) => Promise.resolve(id === KEY.id ? KEY : undefined),
    getAdminSession: () => Promise.resolve(undefined),
  } as unknown as Store,
  clock: () => NOW * 1000,
});

/** A token of KEY expiring at `exp`. */
function token(exp: number) {
  return signToken(
    { stateBackedKeyId: KEY.id, stateBackedSecretKey: KEY.secret },
    { sub: "alice" },
    { expires: { at: exp } },
  );
}

test("verify: an expired token passes within the grace asked for, and without it only within the skew", async () => {
  const hoursAgo = await token(NOW - 2 * 3600);
  await assert.rejects(authenticator.verify(hoursAgo), { code: "token-expired" });
  const caller = await authenticator.verify(hoursAgo, { expiredGraceSeconds: DAY });
  assert.equal(caller.expiresAt, NOW - 2 * 3600);
  await authenticator.verify(await token(NOW - 20));
  const beyond = await token(NOW - DAY - 31);
  await assert.rejects(authenticator.verify(beyond, { expiredGraceSeconds: DAY }), {
    code: "token-expired",
  });
});

test("checkExpiry holds a caller to verify's rule, with the same skew and grace", async () => {
  const caller = await authenticator.verify(await token(NOW - 2 * 3600), {
    expiredGraceSeconds: DAY,
  });
  assert.throws(() => authenticator.checkExpiry(caller), { code: "token-expired" });
  authenticator.checkExpiry(caller, { expiredGraceSeconds: DAY });
  // Exactly skew + grace after exp, verify refuses, and so does checkExpiry.
  const edge = { ...caller, expiresAt: NOW - 30 - DAY };
  assert.throws(() => authenticator.checkExpiry(edge, { expiredGraceSeconds: DAY }), {
    code: "token-expired",
  });
  authenticator.checkExpiry({ ...caller, expiresAt: NOW - 29 });
});
