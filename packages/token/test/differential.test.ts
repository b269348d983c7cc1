// Differential test: our node:crypto HS256 verifier against jose's jwtVerify over thousands of valid
// and mutated tokens. Every token we accept, jose accepts with the same claims; every token jose
// refuses, we refuse. We are stricter in a few named ways (iat in the future, non-string sub, a
// non-object act, a missing kid), and any token only one side accepts must fall in one of them.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { jwtVerify } from "jose";
import { verifyToken } from "../src/index.js";
import { KEY, NOW, NOW_MS, b64json } from "./helpers.js";

const secretBytes = new TextEncoder().encode(KEY.stateBackedSecretKey);
const AUDIENCE = "https://api.statebacked.dev/";

/** A seeded PRNG so a failure reproduces. */
function prng(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sign(
  header: unknown,
  payload: unknown,
  secret: Uint8Array | string = secretBytes,
): string {
  const input = `${b64json(header)}.${b64json(payload)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

type Generated = { token: string; stricter?: string };

function generate(random: () => number): Generated {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const header: Record<string, unknown> = { alg: "HS256", kid: KEY.stateBackedKeyId };
  const payload: Record<string, unknown> = {
    act: { sub: `user-${Math.floor(random() * 1000)}` },
    aud: AUDIENCE,
    exp: NOW + Math.floor(random() * 7200) - 3600,
    iss: "https://example.com/",
    iat: NOW - Math.floor(random() * 3600),
  };
  let stricter: string | undefined;
  const mutation = pick([
    "none",
    "none",
    "none",
    "alg",
    "kid-missing",
    "crit",
    "aud",
    "aud-array",
    "aud-missing",
    "exp-missing",
    "exp-string",
    "nbf",
    "iat-future",
    "act-array",
    "sub-number",
    "payload-array",
    "flip-char",
    "truncate",
    "wrong-secret",
    "swap-payload",
    "extra-part",
    "typ",
  ] as const);
  let secret: Uint8Array | string = secretBytes;
  switch (mutation) {
    case "alg":
      header.alg = pick(["HS384", "HS512", "none", "RS256", "hs256"]);
      break;
    case "kid-missing":
      delete header.kid;
      stricter = "kid required";
      break;
    case "crit":
      header.crit = ["exp"];
      header.exp = 1;
      break;
    case "aud":
      payload.aud = pick(["https://evil/", "", AUDIENCE.toUpperCase()]);
      break;
    case "aud-array":
      payload.aud = random() < 0.5 ? ["x", AUDIENCE] : ["x", "y"];
      break;
    case "aud-missing":
      delete payload.aud;
      break;
    case "exp-missing":
      delete payload.exp;
      break;
    case "exp-string":
      payload.exp = String(payload.exp);
      break;
    case "nbf":
      payload.nbf = NOW + Math.floor(random() * 200) - 100;
      break;
    case "iat-future":
      payload.iat = NOW + 31 + Math.floor(random() * 1000);
      stricter = "iat in the future";
      break;
    case "act-array":
      payload.act = ["x"];
      stricter = "act must be an object";
      break;
    case "sub-number":
      payload.sub = 7;
      stricter = "sub must be a string";
      break;
    case "wrong-secret":
      secret = "sbsec_wrong";
      break;
    case "typ":
      header.typ = "JWT";
      break;
    default:
      break;
  }
  let token =
    mutation === "payload-array" ? sign(header, [payload], secret) : sign(header, payload, secret);
  if (mutation === "flip-char") {
    const i = Math.floor(random() * token.length);
    const replacement = pick(["A", "b", "-", "_", "0", ".", "=", "+", "/", "~"]);
    token = token.slice(0, i) + replacement + token.slice(i + 1);
  } else if (mutation === "truncate") {
    token = token.slice(0, Math.floor(random() * token.length));
  } else if (mutation === "swap-payload") {
    const other = sign(header, { ...payload, act: { sub: "admin" } });
    const [h, , s] = token.split(".");
    token = `${h}.${other.split(".")[1]}.${s}`;
  } else if (mutation === "extra-part") {
    token = `${token}.AAAA`;
  }
  return stricter === undefined ? { token } : { token, stricter };
}

async function ours(token: string) {
  try {
    const result = await verifyToken(token, {
      lookupKey: (kid) =>
        kid === KEY.stateBackedKeyId ? { secret: KEY.stateBackedSecretKey } : undefined,
      clock: () => NOW_MS,
    });
    return { ok: true as const, claims: result.claims };
  } catch (err) {
    return { ok: false as const, code: (err as { code?: string }).code };
  }
}

async function theirs(token: string) {
  try {
    const result = await jwtVerify(
      token,
      (header) => {
        if (header.kid !== KEY.stateBackedKeyId) throw new Error("unknown kid");
        return secretBytes;
      },
      {
        algorithms: ["HS256"],
        audience: AUDIENCE,
        requiredClaims: ["exp"],
        clockTolerance: 30,
        currentDate: new Date(NOW_MS),
      },
    );
    return { ok: true as const, claims: result.payload };
  } catch {
    return { ok: false as const };
  }
}

test("agrees with jose's jwtVerify over 5,000 generated tokens", async (t) => {
  const random = prng(20261126);
  const tally = { bothAccept: 0, bothReject: 0, stricter: 0 };
  for (let i = 0; i < 5000; i++) {
    const { token, stricter } = generate(random);
    const [a, b] = await Promise.all([ours(token), theirs(token)]);
    if (a.ok && b.ok) {
      assert.deepEqual(a.claims, b.claims, token);
      tally.bothAccept++;
    } else if (!a.ok && !b.ok) {
      tally.bothReject++;
    } else {
      assert.ok(!a.ok, `we accepted a token jose refuses: ${token}`);
      assert.ok(stricter, `only jose accepted ${token} (our code: ${a.code})`);
      tally.stricter++;
    }
  }
  t.diagnostic(JSON.stringify(tally));
  // The corpus must exercise both outcomes in volume, or the agreement proves nothing.
  assert.ok(tally.bothAccept > 500, JSON.stringify(tally));
  assert.ok(tally.bothReject > 2000, JSON.stringify(tally));
});
