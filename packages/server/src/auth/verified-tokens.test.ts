// A key token verified from the key memory is verified once (verified-tokens.ts): what a later
// request with it gets must be exactly what verifying again would give, on the clock of that
// request and with the key record the memory holds then.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { DEFAULT_AUDIENCE, signToken } from "@backstate/token";
import type { KeyRecord, Store } from "../store/store.js";
import { Authenticator } from "./authenticator.js";

const KEY = {
  id: "sbk_keptTokensKey00000000",
  orgId: "org_kept",
  name: "kept",
  secret: "sbsec_kept-tokens-test-secret-0123456789",
  scopes: ["instances.write"],
  createdAt: 0,
} satisfies KeyRecord;

/** signToken stamps `iat` with the real time: the authenticator's clock starts a little after. */
const SIGNED_AT = Math.floor(Date.now() / 1000);
const SKEW = 30;

function setup(leewaySeconds?: number) {
  const state = { key: KEY as KeyRecord | undefined, reads: 0, nowSeconds: SIGNED_AT + 60 };
  const store = {
    getKey: (id: string) => {
      state.reads++;
      // A new record for every read, as the stores answer.
      const found = id === KEY.id ? state.key : undefined;
      return Promise.resolve(found && { ...found, scopes: [...found.scopes] });
    },
    getAdminSession: () => Promise.resolve(undefined),
  } as unknown as Store;
  const authenticator = new Authenticator({
    store,
    clock: () => state.nowSeconds * 1000,
    ...(leewaySeconds === undefined ? {} : { leewaySeconds }),
  });
  return { state, authenticator };
}

function token(expiresInSeconds = 3600, sub = "alice") {
  return signToken(
    { stateBackedKeyId: KEY.id, stateBackedSecretKey: KEY.secret },
    { sub, team: { name: "blue" } },
    {
      expires: { at: SIGNED_AT + expiresInSeconds },
    },
  );
}

/** A token with claims of our choosing (signToken sets no nbf), signed with KEY. */
function signed(payload: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode({ alg: "HS256", kid: KEY.id })}.${encode(payload)}`;
  return `${input}.${createHmac("sha256", KEY.secret).update(input).digest("base64url")}`;
}

const fromMemory = { keyFromMemory: true } as const;

test("a key token verified from memory is kept: later requests get the same caller, unchangeable", async () => {
  const { state, authenticator } = setup();
  const jwt = await token();
  const first = await authenticator.verify(jwt, fromMemory);
  assert.equal(state.reads, 1);
  const again = await authenticator.verify(jwt, fromMemory);
  assert.equal(again, await authenticator.verify(jwt, fromMemory));
  assert.deepEqual(again, { ...first, fromMemory: true });
  assert.equal(state.reads, 1);
  // Shared by every request with the token: nothing of it can be changed, however deep.
  assert.throws(() => {
    (again.claims as Record<string, unknown>).sub = "mallory";
  }, TypeError);
  assert.throws(() => {
    (again.claims.team as Record<string, unknown>).name = "red";
  }, TypeError);
  assert.throws(() => {
    (again as { expiresAt: number }).expiresAt += 3600;
  }, TypeError);
  assert.deepEqual(again.claims, { sub: "alice", team: { name: "blue" } });
});

test("a kept token stays kept while other requests read its key unchanged from the store", async () => {
  const { state, authenticator } = setup();
  const alice = await token();
  await authenticator.verify(alice, fromMemory);
  const kept = await authenticator.verify(alice, fromMemory);
  // Bob's request on a route that reads the key (a new, equal record) and an error answer's
  // confirm (which reads it again) leave Alice's verification standing.
  await authenticator.verify(await token(3600, "bob"));
  await authenticator.confirm(kept);
  assert.equal(state.reads, 3);
  assert.equal(await authenticator.verify(alice, fromMemory), kept);
});

test("a kept token is checked with the authenticator's leeway and the grace asked for", async () => {
  const { state, authenticator } = setup(5);
  const jwt = await token(120);
  await authenticator.verify(jwt, fromMemory);
  state.nowSeconds = SIGNED_AT + 120 + 4;
  await authenticator.verify(jwt, fromMemory);
  state.nowSeconds = SIGNED_AT + 120 + 5;
  await assert.rejects(authenticator.verify(jwt, fromMemory), { code: "token-expired" });
  const graced = await token(240);
  await authenticator.verify(graced, fromMemory);
  state.nowSeconds = SIGNED_AT + 240 + 5 + 59;
  await authenticator.verify(graced, { ...fromMemory, expiredGraceSeconds: 60 });
  await assert.rejects(authenticator.verify(graced, fromMemory), { code: "token-expired" });
});

test("a kept token refused for its time is no longer kept", async () => {
  const { state, authenticator } = setup();
  const jwt = await token(120);
  await authenticator.verify(jwt, fromMemory);
  const kept = await authenticator.verify(jwt, fromMemory);
  state.nowSeconds = SIGNED_AT + 120 + SKEW;
  await assert.rejects(authenticator.verify(jwt, fromMemory), { code: "token-expired" });
  // With the clock back (set back by hand, say), it is verified afresh: a new caller.
  state.nowSeconds = SIGNED_AT + 60;
  const again = await authenticator.verify(jwt, fromMemory);
  assert.notEqual(again, kept);
  assert.deepEqual(again, kept);
});

test("a kept token is checked against the clock on every use: it expires as a fresh one would", async () => {
  const { state, authenticator } = setup();
  const jwt = await token(120);
  await authenticator.verify(jwt, fromMemory);
  // Within the skew after exp it still passes; one second beyond, it does not.
  state.nowSeconds = SIGNED_AT + 120 + SKEW - 1;
  await authenticator.verify(jwt, fromMemory);
  state.nowSeconds = SIGNED_AT + 120 + SKEW;
  await assert.rejects(authenticator.verify(jwt, fromMemory), { code: "token-expired" });
  // Not kept as a failure either: verified afresh, it is refused the same way.
  await assert.rejects(authenticator.verify(jwt), { code: "token-expired" });
});

test("a kept token's nbf and iat are checked again too (a clock set back)", async () => {
  const { state, authenticator } = setup();
  const jwt = signed({
    act: { sub: "alice" },
    aud: DEFAULT_AUDIENCE,
    exp: SIGNED_AT + 3600,
    nbf: SIGNED_AT + 30,
  });
  await authenticator.verify(jwt, fromMemory);
  state.nowSeconds = SIGNED_AT - SKEW - 1;
  await assert.rejects(authenticator.verify(jwt, fromMemory), { code: "token-not-yet-valid" });
  const issued = await token();
  state.nowSeconds = SIGNED_AT + 60;
  await authenticator.verify(issued, fromMemory);
  state.nowSeconds = SIGNED_AT - SKEW - 1;
  await assert.rejects(authenticator.verify(issued, fromMemory), {
    code: "token-issued-in-future",
  });
});

test("a key this node deletes ends its kept tokens at once", async () => {
  const { state, authenticator } = setup();
  const jwt = await token();
  await authenticator.verify(jwt, fromMemory);
  state.key = undefined;
  authenticator.forget(KEY.id);
  await assert.rejects(authenticator.verify(jwt, fromMemory), { code: "token-unknown-key" });
});

test("a key read anew ends its kept tokens: they are verified with the record read", async () => {
  const { state, authenticator } = setup();
  const jwt = await token();
  await authenticator.verify(jwt, fromMemory);
  const caller = await authenticator.verify(jwt, fromMemory);
  // The store now answers another secret under the id (ids are never reused; this only shows
  // that a kept verification stands for the very record it was made with).
  state.key = { ...KEY, secret: "sbsec_another-secret-entirely-0123456789" };
  await authenticator.confirm(caller);
  await assert.rejects(authenticator.verify(jwt, fromMemory), {
    code: "token-signature-invalid",
  });
});

test("a token verified without the key memory is neither kept nor served from what was kept", async () => {
  const { state, authenticator } = setup();
  const jwt = await token();
  const one = await authenticator.verify(jwt);
  const two = await authenticator.verify(jwt);
  assert.notEqual(one, two);
  assert.equal(state.reads, 2);
  assert.equal(one.kind === "key" && one.fromMemory, undefined);
  await authenticator.verify(jwt, fromMemory);
  const read = await authenticator.verify(jwt);
  assert.equal(read.kind === "key" && read.fromMemory, undefined);
  assert.equal(state.reads, 3);
});

test("authenticate answers a kept token at once, without a promise; any other with one", async () => {
  const { state, authenticator } = setup();
  const header = `Bearer ${await token()}`;
  const first = authenticator.authenticate(header, fromMemory);
  assert.ok(first instanceof Promise, "the first use verifies the token with its key");
  const caller = await first;
  const kept = authenticator.authenticate(header, fromMemory);
  assert.ok(!(kept instanceof Promise));
  assert.deepEqual(kept, { ...caller, fromMemory: true });
  assert.equal(authenticator.authenticate(header, fromMemory), kept, "the one kept caller");
  assert.equal(state.reads, 1);
  // Without keyFromMemory the key is read on every request.
  const unkept = authenticator.authenticate(header);
  assert.ok(unkept instanceof Promise);
  await unkept;
  // What a kept token fails on is thrown then and there.
  state.nowSeconds = SIGNED_AT + 3600 + SKEW + 1;
  assert.throws(() => authenticator.authenticate(header, fromMemory), { code: "token-expired" });
  assert.throws(() => authenticator.authenticate("Basic x", fromMemory), { code: "token-missing" });
});
