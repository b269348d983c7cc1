// Token exchange, piece by piece: the mapping language, the JWKS address policy, the JWKS cache
// (with a fake fetch and a fake clock), the exchanged token's encoding, and how other errors
// become OAuth errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_AUDIENCE, signToken, verifyToken } from "@backstate/token";
import { exportJWK, generateKeyPair, type JSONWebKeySet } from "jose";
import {
  guardedLookup,
  refusal,
  type JwksAddressPolicy,
} from "../../src/auth/token-exchange/addresses.js";
import { atobSafeJson, signExchangedToken } from "../../src/auth/token-exchange/exchanged-token.js";
import {
  DEFAULT_JWKS_OPTIONS,
  JwksCache,
  JwksUnavailableError,
} from "../../src/auth/token-exchange/jwks.js";
import { applyMapping, checkMapping } from "../../src/auth/token-exchange/mapping.js";
import { toOAuthError } from "../../src/auth/token-exchange/exchange.js";
import { silentLogger } from "../../src/engine/logger.js";
import { BackstateError, InvalidParameterError } from "../../src/errors.js";

describe("the mapping language", () => {
  const input = {
    sub: "u1",
    email: "u1@example.test",
    x: { y: 7, z: null },
    roles: ["admin", "editor"],
    one: ["only"],
    orgs: [{ id: "o1" }, { id: "o2" }],
    "odd.key": "odd",
  };

  test("paths, literals, nesting, and the documented example", () => {
    assert.deepEqual(applyMapping({ "sub.$": "$.sub", provider: "auth0" }, { sub: "u1", x: 1 }), {
      sub: "u1",
      provider: "auth0",
    });
    assert.deepEqual(
      applyMapping(
        {
          a: { "b.$": "$.x.y", c: { "d.$": "$.email" } },
          list: [1, "two", { "not.$": "mapped" }],
          n: 3,
          t: true,
          nothing: null,
        },
        input,
      ),
      {
        a: { b: 7, c: { d: "u1@example.test" } },
        list: [1, "two", { "not.$": "mapped" }],
        n: 3,
        t: true,
        nothing: null,
      },
    );
  });

  test("a missing $ is implied; no match omits the key; several matches make an array", () => {
    assert.deepEqual(
      applyMapping(
        {
          "a.$": "sub",
          "b.$": ".sub",
          "c.$": "x.y",
          "missing.$": "$.nope",
          "deepMissing.$": "$.x.nope.deeper",
          "roles.$": "$.roles",
          "each.$": "$.roles[*]",
          "single.$": "$.one[*]",
          "ids.$": "$.orgs[*].id",
          "first.$": "$.roles[0]",
          "quoted.$": "$['odd.key']",
          "nullValue.$": "$.x.z",
          "all.$": "$",
        },
        input,
      ),
      {
        a: "u1",
        b: "u1",
        c: 7,
        roles: ["admin", "editor"],
        each: ["admin", "editor"],
        single: "only",
        ids: ["o1", "o2"],
        first: "admin",
        quoted: "odd",
        nullValue: null,
        all: input,
      },
    );
  });

  test("an input cannot pollute prototypes or smuggle non-JSON values", () => {
    const hostile = JSON.parse(
      '{"__proto__": {"polluted": true}, "constructor": {"x": 1}}',
    ) as object;
    const out = applyMapping({ "p.$": "$.__proto__", "c.$": "$.constructor" }, hostile);
    assert.deepEqual(out, { p: { polluted: true }, c: { x: 1 } });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    // Paths into what JSON parsing cannot make (functions of the prototype) find nothing.
    assert.deepEqual(applyMapping({ "f.$": "$.toString", "g.$": "$.constructor.name" }, {}), {});
  });

  test("checkMapping accepts what applyMapping can apply", () => {
    for (const mapping of [
      {},
      { "sub.$": "$.sub" },
      {
        "sub.$": "sub",
        literal: [1, { a: 2 }],
        nested: { "x.$": "$..y", deeper: { "z.$": "$[0]" } },
      },
      { "k.$": "$['a b']['c']" },
      { "k.$": '$["quoted ] bracket"]' },
      { "k.$": "$.roles[1:]" },
      { "k.$": "$.a.*" },
    ]) {
      assert.doesNotThrow(() => checkMapping(mapping), JSON.stringify(mapping));
    }
  });

  test("checkMapping refuses, naming the mapping parameter", () => {
    const refused: Array<[unknown, RegExp]> = [
      [null, /JSON object/],
      [[], /JSON object/],
      ["$.sub", /JSON object/],
      [{ "sub.$": 1 }, /JSONPath string/],
      [{ "sub.$": "" }, /empty/],
      [{ "sub.$": "   " }, /empty/],
      [{ "sub.$": "$.a[" }, /unclosed/],
      [{ "sub.$": "$.a]" }, /unmatched/],
      [{ "sub.$": "$['a" }, /unterminated/],
      [{ "sub.$": "$.a'b" }, /quote outside/],
      [{ "sub.$": "$[[0]]" }, /nested brackets/],
      [{ "sub.$": "$[?(@.x)]" }, /filter and script/],
      [{ "sub.$": "$[(@.length-1)]" }, /filter and script/],
      [{ "sub.$": "$..@string()" }, /filter and script/],
      [{ "sub.$": "$.`x" }, /backtick/],
      [{ "sub.$": `$.${"a".repeat(600)}` }, /longer than/],
      [{ ".$": "$.a" }, /empty key/],
      [{ "": 1 }, /empty key/],
      [{ "a.$": "$.a", a: 1 }, /twice/],
      [{ "__proto__.$": "$.a" }, /__proto__/],
      [JSON.parse('{"__proto__": 1}'), /__proto__/],
      [{ a: { b: { c: { d: { e: { f: { g: { h: { i: {} } } } } } } } } }, /deeper/],
      [Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])), /entries/],
      [{ big: "x".repeat(20_000) }, /larger/],
    ];
    for (const [mapping, why] of refused) {
      assert.throws(
        () => checkMapping(mapping),
        (err: unknown) => {
          assert.equal((err as { code?: string }).code, "invalid-parameter");
          assert.equal((err as { parameter?: string }).parameter, "mapping");
          assert.match((err as Error).message, why);
          return true;
        },
        JSON.stringify(mapping)?.slice(0, 80),
      );
    }
  });
});

describe("the JWKS address policy", () => {
  test("what each policy allows", () => {
    const strict: JwksAddressPolicy = { allowLoopback: false, allowPrivate: false };
    const dev: JwksAddressPolicy = { allowLoopback: true, allowPrivate: false };
    const internal: JwksAddressPolicy = { allowLoopback: false, allowPrivate: true };
    const allows = (policy: JwksAddressPolicy, address: string, protocol = "https:") =>
      refusal(address, protocol, policy) === undefined;
    assert.ok(allows(strict, "8.8.8.8"));
    assert.ok(!allows(strict, "8.8.8.8", "http:"), "http never, without development mode");
    assert.ok(!allows(strict, "127.0.0.1"));
    assert.ok(!allows(strict, "10.0.0.1"));
    assert.ok(allows(dev, "127.0.0.1"));
    assert.ok(allows(dev, "127.0.0.1", "http:"));
    assert.ok(allows(dev, "::1", "http:"));
    assert.ok(!allows(dev, "10.0.0.1"));
    assert.ok(!allows(dev, "8.8.8.8", "http:"), "http only to loopback");
    assert.ok(allows(internal, "10.0.0.1"));
    assert.ok(allows(internal, "169.254.169.254"));
    assert.ok(allows(internal, "127.0.0.1"));
    assert.ok(!allows(internal, "10.0.0.1", "http:"));
  });

  test("the guarded lookup refuses names resolving to refused addresses, before connecting", async () => {
    const lookupWith = (policy: JwksAddressPolicy, protocol: string, all: boolean) =>
      new Promise<{ error: Error | null; address: unknown }>((resolve) => {
        guardedLookup(protocol, policy)("localhost", { all }, (error, address) =>
          resolve({ error, address }),
        );
      });
    const strict = await lookupWith({ allowLoopback: false, allowPrivate: false }, "https:", false);
    assert.match(String(strict.error), /an address of localhost is a loopback address/);
    assert.doesNotMatch(String(strict.error), /127\.0\.0\.1|::1/, "the address is not shown");
    const dev = await lookupWith({ allowLoopback: true, allowPrivate: false }, "http:", false);
    assert.equal(dev.error, null);
    assert.match(String(dev.address), /^(127\.0\.0\.1|::1)$/);
    const devAll = await lookupWith({ allowLoopback: true, allowPrivate: false }, "http:", true);
    assert.equal(devAll.error, null);
    assert.ok(Array.isArray(devAll.address) && devAll.address.length > 0);
  });
});

describe("the JWKS cache", () => {
  async function keySet(kid: string) {
    const { publicKey } = await generateKeyPair("ES256");
    return { jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256" } };
  }
  const header = (kid: string) => ({ alg: "ES256", kid });
  const token = { payload: "", signature: "" };

  function harness(documents: () => JSONWebKeySet | Error) {
    let now = 1_000_000;
    const fetched: string[] = [];
    const cache = new JwksCache(
      {
        ...DEFAULT_JWKS_OPTIONS,
        cooldownMs: 30_000,
        maxAgeMs: 600_000,
        maxEntries: 2,
        policy: { allowLoopback: false, allowPrivate: false },
        now: () => now,
      },
      (url) => {
        fetched.push(url.href);
        const document = documents();
        return document instanceof Error ? Promise.reject(document) : Promise.resolve(document);
      },
    );
    return {
      cache,
      fetched,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }

  test("fetched once, served from the cache, refetched for an unknown kid once per cooldown", async () => {
    const a = await keySet("a");
    const b = await keySet("b");
    let keys = [a.jwk];
    const { cache, fetched, advance } = harness(() => ({ keys }));
    const resolve = cache.resolver("https://idp.example/jwks");
    await resolve(header("a"), token);
    await resolve(header("a"), token);
    assert.equal(fetched.length, 1);
    keys = [a.jwk, b.jwk];
    // Rotated within the cooldown: b stays unknown, and no fetch is made for it.
    advance(10_000);
    await assert.rejects(resolve(header("b"), token), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    await assert.rejects(resolve(header("b"), token), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    assert.equal(fetched.length, 1);
    advance(21_000);
    await resolve(header("b"), token);
    assert.equal(fetched.length, 2);
    // Concurrent unknown kids after the cooldown share one fetch.
    advance(31_000);
    await Promise.allSettled(Array.from({ length: 10 }, () => resolve(header("zz"), token)));
    assert.equal(fetched.length, 3);
  });

  test("a stale set is refetched, and kept when refetching fails", async () => {
    const a = await keySet("a");
    let answer: JSONWebKeySet | Error = { keys: [a.jwk] };
    const { cache, fetched, advance } = harness(() => answer);
    const resolve = cache.resolver("https://idp.example/jwks");
    await resolve(header("a"), token);
    advance(600_001);
    answer = new JwksUnavailableError("down");
    await resolve(header("a"), token);
    assert.equal(fetched.length, 2, "tried again when stale");
    await resolve(header("a"), token);
    assert.equal(fetched.length, 2, "the failure waits out the cooldown");
  });

  test("a failing URL fails fast during its cooldown; the least recently used URL goes first", async () => {
    const a = await keySet("a");
    let fail = true;
    const { cache, fetched, advance } = harness(() =>
      fail ? new JwksUnavailableError("down") : { keys: [a.jwk] },
    );
    const resolve = cache.resolver("https://down.example/jwks");
    await assert.rejects(resolve(header("a"), token), JwksUnavailableError);
    await assert.rejects(resolve(header("a"), token), JwksUnavailableError);
    assert.equal(fetched.length, 1);
    fail = false;
    advance(30_000);
    await resolve(header("a"), token);
    assert.equal(fetched.length, 2);

    await cache.resolver("https://two.example/jwks")(header("a"), token);
    await cache.resolver("https://three.example/jwks")(header("a"), token);
    assert.equal(fetched.length, 4);
    // Only two URLs are kept: down.example was the least recently used, so it is fetched again.
    await resolve(header("a"), token);
    assert.equal(fetched.length, 5);
  });
});

describe("the exchanged token", () => {
  test("its claims JSON is ASCII without > ? ~, so its base64url is plain base64", () => {
    const value = { name: "Zoë 🙂", odd: ">?~\u007f", ctl: "\u0001", ls: "\u2028" };
    const text = atobSafeJson(value);
    assert.match(text, /^[\x20-\x3d\x40-\x7d]*$/);
    assert.deepEqual(JSON.parse(text), value);
    for (let i = 0; i < 200; i++) {
      const random = {
        s: String.fromCharCode(...Array.from({ length: i }, (_, j) => (j * 7919 + i) % 0x2fff)),
      };
      const encoded = Buffer.from(atobSafeJson(random), "latin1").toString("base64url");
      assert.doesNotMatch(encoded, /[-_]/);
      assert.deepEqual(JSON.parse(atob(encoded)), random);
    }
  });

  test("it verifies like a key token, and matches signToken's header and claims", async () => {
    const key = { stateBackedKeyId: "sbk_unit", stateBackedSecretKey: "sbsec_unit-secret" };
    const issuedAt = Math.floor(Date.now() / 1000);
    const token = signExchangedToken({
      keyId: key.stateBackedKeyId,
      secret: key.stateBackedSecretKey,
      act: { sub: "Zoë", n: 1 },
      issuer: "https://tokens.statebacked.dev/org_x/svc",
      issuedAt,
      expiresAt: issuedAt + 3600,
    });
    const verified = await verifyToken(token, {
      lookupKey: (kid) =>
        kid === key.stateBackedKeyId ? { secret: key.stateBackedSecretKey } : undefined,
    });
    assert.deepEqual(verified.authContext, { sub: "Zoë", n: 1 });
    assert.equal(verified.claims.aud, DEFAULT_AUDIENCE);

    const reference = await signToken(
      key,
      { sub: "plain", n: 1 },
      {
        expires: { at: issuedAt + 3600 },
        issuer: "https://tokens.statebacked.dev/org_x/svc",
      },
    );
    const ours = signExchangedToken({
      keyId: key.stateBackedKeyId,
      secret: key.stateBackedSecretKey,
      act: { sub: "plain", n: 1 },
      issuer: "https://tokens.statebacked.dev/org_x/svc",
      issuedAt: JSON.parse(atob(reference.split(".")[1]!)).iat as number,
      expiresAt: issuedAt + 3600,
    });
    assert.equal(ours, reference, "byte for byte, when the claims need no escaping");
  });
});

describe("other errors as OAuth errors", () => {
  test("bad input, named or refused by the store, is invalid_request; a store failure is not", () => {
    const named = toOAuthError(
      new InvalidParameterError("body", "the body is not UTF-8"),
      silentLogger,
    );
    assert.deepEqual(
      [named.type, named.code, named.status],
      ["invalid_request", "invalid-parameter", 400],
    );
    const unstorable = new BackstateError("invalid-parameter", "text the database cannot store");
    const refused = toOAuthError(unstorable, silentLogger);
    assert.deepEqual(
      [refused.type, refused.code, refused.status],
      ["invalid_request", "invalid-parameter", 400],
    );
    const failed = toOAuthError(new BackstateError("store-error", "storage failed"), silentLogger);
    assert.deepEqual([failed.type, failed.status], ["temporarily_unavailable", 503]);
  });
});
