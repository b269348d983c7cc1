// Seeded fuzzing of every route of `apiRoutes` on a real server: malformed and mistyped bodies,
// missing fields, huge bodies, odd unicode, path and query tricks, duplicate and junk headers,
// wrong content types, garbage multipart, and bytes node:http would refuse to send. Every answer
// must be < 500 (501 only from the not-implemented routes) with a JSON `{error, code}` body on
// every 4xx; every request built to be invalid must be refused; the server must still answer
// afterwards; and nothing an admin can read about the org may have changed.
// Reproduce a run with FUZZ_SEED=<n> (the seed is printed).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { SCOPES } from "../../src/auth/scopes.js";
import type { Route } from "../../src/http/route.js";
import { apiRoutes } from "../../src/http/routes/all-routes.js";
import { notImplementedRoutes } from "../../src/http/routes/not-implemented.js";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { snapshotOrg } from "./org-snapshot.js";
import {
  requestBytes,
  sendBytes,
  sendRaw,
  type Header,
  type RawRequest,
  type RawResponse,
} from "./raw-http.js";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2024);
/** Random cases per route, on top of the deterministic ones. */
const ROUNDS = 10;
const MB = 1024 * 1024;

type Json = Record<string, unknown>;
type Auth = "admin" | "key";
type Case = {
  route: Route;
  label: string;
  /** Built to be invalid (or to name nothing): any 2xx is a failure. */
  mustFail: boolean;
} & ({ request: RawRequest } | { bytes: Uint8Array });

/** Values known to be invalid for a body field. */
type Field = { required: boolean; wrong: readonly unknown[]; name?: boolean };
type Target = {
  /** A path naming things that exist (the signed id: a version whose code never arrives). */
  path: string;
  /** A valid body: the fuzzer only ever sends it broken. */
  valid?: Json;
  fields?: Record<string, Field>;
  /** Requests are built to fail (a fake target, or a defective body). */
  mustFail?: boolean;
};

/** mulberry32: small, fast, and the same sequence on every platform. */
class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const MACHINE = "wf";
const INSTANCE = "fz";
const FAKE_KEY = "sbk_fuzzNoSuchKey000000";
const hmac = (key: string, message: string) =>
  createHmac("sha256", key).update(message).digest("base64url");

let api: ApiServer;
let keyToken: string;
/** A provisional version of wf whose code is never uploaded: finalizing it must always fail. */
let signedNoUpload: string;
/** Upload fields of another provisional version, used only in broken uploads. */
let uploadFields: Record<string, string>;
let uploadPath: string;

const ODD = [
  "\ud800", // lone high surrogate
  "\udfff", // lone low surrogate
  "\u0000",
  "\u202e", // right-to-left override
  "\u200f\u200d\ufeff", // RTL mark, zero-width joiner, BOM
  "🙂👩‍👩‍👧‍👦",
  "e\u0301\u0301\u0301", // stacked combining marks
  "\uffff\ufffe",
  "../",
  "%2F",
];
/** At least `length` code points (zod's string limits count code points, not UTF-16 units). */
const oddString = (rng: Random, length: number) => {
  let out = "";
  for (let count = 0; count < length;) {
    const piece = rng.pick(ODD);
    out += piece;
    count += [...piece].length;
  }
  return out;
};

const NAME_WRONG = [
  42,
  "",
  "a b",
  "x".repeat(129),
  "wf/x",
  "../wf",
  "é",
  null,
  ["a"],
  {},
  "\u0000",
  "wf\n",
];
const DANGER_WRONG = ["true", 1, false, null, {}, []];

function targets(): Record<string, Target> {
  const instancePath = `/machines/${MACHINE}/i/${INSTANCE}`;
  const failing = (path: string): Target => ({ path, mustFail: true });
  const notImplemented = (path: string) => failing(path);
  return {
    "GET /orgs": { path: "/orgs" },
    "POST /orgs": {
      path: "/orgs",
      valid: { name: "fuzz org" },
      fields: {
        name: { required: true, wrong: [42, null, "", "x".repeat(257), ["a"], {}, true] },
        allowAnonymousAccess: { required: false, wrong: ["yes", 1, null, {}] },
      },
    },
    "GET /keys": { path: "/keys" },
    "POST /keys": {
      path: "/keys",
      valid: { name: "fuzz key", scopes: ["machines.read"] },
      fields: {
        name: { required: true, wrong: [42, null, "", "x".repeat(257), ["a"]] },
        // Without scopes the body has neither scopes nor use: refused too.
        scopes: {
          required: true,
          wrong: [
            "machines.read",
            [],
            ["nope"],
            [42],
            {},
            null,
            Array<string>(65).fill("machines.read"),
          ],
        },
        // A valid preset beside scopes is not wrong: the scopes win (smply always sends one).
        use: { required: false, wrong: ["prod", 1, null, ["ci"]] },
      },
    },
    "DELETE /keys/:keyId": failing(`/keys/${FAKE_KEY}`),
    "GET /machines": { path: "/machines" },
    "POST /machines": {
      path: "/machines",
      valid: { slug: "fz-new" },
      fields: {
        slug: { required: true, wrong: NAME_WRONG, name: true },
        indexes: {
          required: false,
          wrong: ["idx", [42], ["a b"], Array(65).fill("a"), ["a", "b", "a"], null],
        },
      },
    },
    "GET /machines/:machineName": { path: `/machines/${MACHINE}` },
    "DELETE /machines/:machineName": {
      path: `/machines/${MACHINE}`,
      valid: {
        dangerDataWillBeDeletedForever: true,
        hmacSha256OfMachineNameWithMachineNameKey: hmac(MACHINE, MACHINE),
      },
      fields: {
        dangerDataWillBeDeletedForever: { required: true, wrong: DANGER_WRONG },
        hmacSha256OfMachineNameWithMachineNameKey: {
          required: true,
          wrong: [
            "",
            "x",
            42,
            null,
            hmac(MACHINE, "x"),
            hmac("x", MACHINE),
            `${hmac(MACHINE, MACHINE)}=`,
          ],
        },
      },
    },
    "GET /machines/:machineName/v": { path: `/machines/${MACHINE}/v` },
    "POST /machines/:machineName/v": { path: `/machines/${MACHINE}/v` },
    "PUT /machines/:machineName/v/:signedMachineVersionId": {
      path: `/machines/${MACHINE}/v/${signedNoUpload}`,
      valid: { clientInfo: "fuzz", makeCurrent: true },
      fields: {
        clientInfo: { required: false, wrong: [42, null, "x".repeat(1025), {}, []] },
        makeCurrent: { required: false, wrong: ["true", 1, null, {}] },
        indexSelectors: {
          required: false,
          wrong: ["a", [1], { "a b": "$.x" }, { idx: 42 }, { notAnIndex: "$.x" }, null],
        },
      },
      // Its code never arrives, so even a valid body is refused.
      mustFail: true,
    },
    "POST /code-uploads": failing("/code-uploads"),
    "POST /machines/:machineName": {
      path: `/machines/${MACHINE}`,
      valid: { slug: "fz-new" },
      fields: {
        slug: { required: true, wrong: NAME_WRONG, name: true },
        context: { required: false, wrong: ["str", 42, [1], null, true] },
        machineVersionId: {
          required: false,
          wrong: ["v1", 42, "ver_", "ver_a/b", `ver_${"a".repeat(65)}`, null, ["ver_a"]],
        },
      },
    },
    "GET /machines/:machineName/i": { path: `/machines/${MACHINE}/i` },
    "GET /machines/:machineName/i/:instanceName": { path: instancePath },
    "DELETE /machines/:machineName/i/:instanceName": {
      path: instancePath,
      valid: {
        dangerDataWillBeDeletedForever: true,
        hmacSha256OfMachineInstanceNameWithMachineNameKey: hmac(MACHINE, INSTANCE),
      },
      fields: {
        dangerDataWillBeDeletedForever: { required: true, wrong: DANGER_WRONG },
        hmacSha256OfMachineInstanceNameWithMachineNameKey: {
          required: true,
          wrong: [
            "",
            42,
            null,
            hmac(INSTANCE, MACHINE),
            hmac(MACHINE, MACHINE),
            hmac(MACHINE, "fz2"),
          ],
        },
      },
    },
    "GET /machines/:machineName/i/:instanceName/admin": { path: `${instancePath}/admin` },
    "GET /machines/:machineName/i/:instanceName/events": { path: `${instancePath}/events` },
    "POST /machines/:machineName/i/:instanceName/events": {
      path: `${instancePath}/events`,
      valid: { event: { type: "inc" } },
      fields: {
        event: {
          required: true,
          wrong: [
            42,
            "",
            null,
            {},
            { type: 42 },
            { type: "" },
            [],
            true,
            "x".repeat(1025),
            { type: "y".repeat(1025) },
          ],
        },
      },
    },
    "PUT /machines/:machineName/i/:instanceName/status": {
      path: `${instancePath}/status`,
      valid: { status: "paused" },
      fields: {
        status: {
          required: true,
          wrong: ["Paused", "stopped", 1, null, "", ["paused"], { status: "paused" }],
        },
      },
    },
    // A plain GET of the WebSocket endpoint: always refused (426).
    "GET /rt": failing("/rt?token=x"),
    "GET /healthz": { path: "/healthz" },
    "PUT /machines/:machineName/i/:instanceName/v": notImplemented(`${instancePath}/v`),
    "POST /machines/:machineName/migrations": notImplemented(`/machines/${MACHINE}/migrations`),
    "PUT /machines/:machineName/migrations/:signedMigrationId": notImplemented(
      `/machines/${MACHINE}/migrations/mig_x.1.y`,
    ),
    "GET /machines/:machineName/indexes/:index/query": notImplemented(
      `/machines/${MACHINE}/indexes/idx/query?op=eq&value=1`,
    ),
    "GET /logs": notImplemented(`/logs?from=${encodeURIComponent(new Date(0).toISOString())}`),
    "GET /idps": { path: "/idps" },
    "POST /idps": {
      path: "/idps",
      valid: {
        iss: "https://fuzz.example/",
        algs: ["HS256"],
        key: Buffer.from("a fuzzing secret of some length").toString("base64url"),
        mapping: { "sub.$": "$.sub" },
      },
      fields: {
        iss: { required: true, wrong: [42, null, "", "x".repeat(1025), [], {}] },
        algs: {
          required: true,
          wrong: ["HS256", [], ["none"], ["RS256"], ["HS256", "ES256"], [42], null, {}],
        },
        key: {
          required: true,
          wrong: ["", "not base64!", "c2hvcnQ", 42, null, {}, "x".repeat(4097)],
        },
        jwksUrl: {
          required: false,
          wrong: ["https://10.0.0.1/jwks", "http://169.254.169.254/", "not a url", 42, null],
        },
        mapping: {
          required: true,
          wrong: [
            "x",
            42,
            null,
            [],
            { "a.$": 42 },
            { "a.$": "$[?(@.x)]" },
            { "a.$": "$.a[" },
            { "a.$": "" },
            { "__proto__.$": "$.x" },
          ],
        },
      },
    },
    // Names an identity provider that does not exist (or no aud/iss at all).
    "DELETE /idps": failing("/idps"),
    "GET /token-providers": { path: "/token-providers" },
    "POST /token-providers": {
      path: "/token-providers",
      valid: { service: "fz-svc", keyId: FAKE_KEY, mapping: { "sub.$": "$.sub" } },
      fields: {
        service: { required: true, wrong: NAME_WRONG, name: true },
        keyId: { required: true, wrong: [42, "", "key", null, "sbk_a/b", ["sbk_x"]] },
        mapping: { required: true, wrong: ["x", 42, null, [], { "a.$": "$.(x)" }] },
      },
      // The key does not exist, so even a valid body is refused.
      mustFail: true,
    },
    "DELETE /token-providers/:service": failing("/token-providers/fz-no-such-service"),
    // No subject token any identity provider signed: every exchange is refused.
    "POST /tokens": failing("/tokens"),
    "GET /billing": notImplemented("/billing"),
    "POST /org-members": notImplemented("/org-members"),
    "PUT /:invitationCode": notImplemented("/inv_fuzz"),
  };
}

// ---- pieces of requests ----------------------------------------------------------------------

function authHeaders(auth: Auth): Header[] {
  return auth === "admin"
    ? [
        ["authorization", `Bearer ${api.adminToken}`],
        ["x-statebacked-org-id", api.orgId],
      ]
    : [["authorization", `Bearer ${keyToken}`]];
}

const json = (value: unknown) => JSON.stringify(value);

const MALFORMED_JSON: readonly (string | Buffer)[] = [
  "{",
  '{"slug":',
  "[1,2",
  "{'slug':'x'}",
  "nul",
  '{"a":1}}',
  '{"a":1,}',
  "\u0000",
  "\ufeff{}{",
  '{"event": {"type": "inc"}',
  "undefined",
  "NaN",
  '{"a":"\\x41"}',
  '{"a":"\\ud800\\"}',
  '"unterminated',
  Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), // {"a":"<CESU surrogate>"}
  Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]), // UTF-16 with BOM
  Buffer.from([0xc0, 0xaf, 0x7b, 0x7d]), // overlong UTF-8
];

const NON_OBJECT_BODIES = ["[]", '"string"', "42", "null", "true", "[{}]"];

function omit(object: Json, key: string): Json {
  const copy = { ...object };
  delete copy[key];
  return copy;
}

/** A body defect: every result is invalid for a route with `fields` (and a `valid` body). */
function bodyDefect(
  rng: Random,
  target: Target,
  kind: number,
): { label: string; body: string | Buffer } {
  const valid = target.valid!;
  const fields = Object.entries(target.fields!);
  const required = fields.filter(([, field]) => field.required);
  switch (kind % 6) {
    case 0: {
      const body = rng.pick(MALFORMED_JSON);
      return { label: "malformed JSON", body };
    }
    case 1: {
      const [name, field] = rng.pick(fields);
      const wrong = rng.pick(field.wrong);
      return { label: `wrong type for ${name}`, body: json({ ...valid, [name]: wrong }) };
    }
    case 2: {
      if (required.length === 0)
        return { label: "not an object", body: rng.pick(NON_OBJECT_BODIES) };
      const [name] = rng.pick(required);
      return rng.chance(0.5)
        ? { label: `missing ${name}`, body: json(omit(valid, name)) }
        : { label: "not an object", body: rng.pick(NON_OBJECT_BODIES) };
    }
    case 3: {
      // Odd unicode longer than any free-text limit (1024), or short in a name field.
      const [name, field] = rng.pick(fields);
      const value = field.name && rng.chance(0.5) ? oddString(rng, 3) : oddString(rng, 1100);
      return { label: `odd unicode in ${name}`, body: json({ ...valid, [name]: value }) };
    }
    case 4: {
      // Duplicate keys: the last one wins, and it is wrong.
      const [name, field] = rng.pick(fields);
      const text = json(valid).slice(0, -1);
      return {
        label: `duplicate key ${name}`,
        body: `${text}${text.length > 1 ? "," : ""}"${name}":${json(rng.pick(field.wrong))}}`,
      };
    }
    default: {
      const [name, field] = rng.pick(fields);
      const wrong = rng.pick(field.wrong);
      // Deeply nested noise beside the wrong field.
      let nested: unknown = "deep";
      for (let i = 0; i < 2000; i++) nested = [nested];
      return {
        label: `wrong ${name} beside deep nesting`,
        body: json({ ...valid, [name]: wrong, noise: nested }),
      };
    }
  }
}

type Noise = (rng: Random, request: RawRequest, auth: Auth) => string;

const setHeader = (request: RawRequest, name: string, values: string[]) => {
  request.headers = [
    ...(request.headers ?? []).filter(([n]) => n.toLowerCase() !== name),
    ...values.map((value): Header => [name, value]),
  ];
};
const headerOf = (request: RawRequest, name: string) =>
  request.headers?.find(([n]) => n.toLowerCase() === name)?.[1];

function splitTarget(target: string): { path: string; query: string } {
  const at = target.indexOf("?");
  return at === -1
    ? { path: target, query: "" }
    : { path: target.slice(0, at), query: target.slice(at) };
}

const PATH_TRICKS: Array<[string, (rng: Random, segments: string[], i: number) => string]> = [
  [
    "dot-dot staying in the route",
    (_r, s, i) => join([...s.slice(0, i), "zz", "..", ...s.slice(i)]),
  ],
  [
    "%2e%2e staying in the route",
    (_r, s, i) => join([...s.slice(0, i), "zz", "%2e%2e", ...s.slice(i)]),
  ],
  ["dot-dot above the route", (_r, s) => `${join(s)}/../..`],
  ["%2F in a segment", (_r, s, i) => join(s.map((x, j) => (j === i ? `${x}%2Fzz` : x)))],
  ["%00 in a segment", (_r, s, i) => join(s.map((x, j) => (j === i ? `${x}%00` : x)))],
  [
    "bad percent-encoding",
    (r, s, i) => {
      const bad = r.pick(["%", "%zz", "%E0%A4%A", "%ED%A0%80", "%C0%AF", "%FF", "%u0041"]);
      return join(s.map((x, j) => (j === i ? `${x}${bad}` : x)));
    },
  ],
  ["double slashes", (_r, s) => `/${s.join("//")}`],
  ["leading double slash", (_r, s) => `/${join(s)}`],
  ["trailing slash", (_r, s) => `${join(s)}/`],
  [
    "very long segment",
    (r, s, i) => join(s.map((x, j) => (j === i ? "a".repeat(r.pick([129, 5000, 12000])) : x))),
  ],
  ["backslash", (_r, s) => join(s).replace(/\/([^/]*)$/, "\\$1")],
  ["encoded backslash", (_r, s, i) => join(s.map((x, j) => (j === i ? `${x}%5C..` : x)))],
  ["matrix parameter", (_r, s, i) => join(s.map((x, j) => (j === i ? `${x};v=1` : x)))],
  [
    "percent-encoded odd unicode",
    (r, s, i) =>
      join(
        s.map((x, j) =>
          j === i ? encodeURIComponent(oddString(r, 4).replace(/[\ud800-\udfff]/g, "")) : x,
        ),
      ),
  ],
  ["encoded #", (_r, s, i) => join(s.map((x, j) => (j === i ? `${x}%23frag` : x)))],
];
const join = (segments: string[]) => `/${segments.join("/")}`;

const QUERY_JUNK = [
  "cursor=garbage",
  `cursor=${Buffer.from('{"a":1}').toString("base64url")}`,
  `cursor=${Buffer.from("[[[[1]]]]").toString("base64url")}`,
  `cursor=${Buffer.from('{"createdAt":"x","id":7}').toString("base64url")}`,
  "cursor=%FF%FE",
  "cursor=%ED%A0%80",
  `cursor=${"A".repeat(2000)}`,
  "cursor=a&cursor=b&cursor=c",
  "cursor[]=1&cursor[x]=2",
  "cursor",
  "cursor=%00",
  "__proto__[polluted]=1&constructor[prototype][x]=1",
  "toString=1&hasOwnProperty=2",
  "gzip&gzip=true&gzip=&gzip=%00",
  `gzip=${"1".repeat(100)}`,
  `${"x=1&".repeat(2000)}y=2`,
  "=&&==&%",
  "cursor=%2e%2e%2f%2e%2e",
];

const ACT_JUNK = [
  "{",
  "null",
  "[]",
  "[{}]",
  "42",
  '"alice"',
  "true",
  '{"sub":' + '"x'.repeat(1) + "x".repeat(10_000) + '"}',
  '{"__proto__":{"polluted":true}}',
  '{"sub":"\\ud800"}',
  "{}{}",
  "%7B%7D",
];

const AUTH_JUNK = (rng: Random): string =>
  rng.pick([
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer a.b.c",
    "Bearer ...",
    `Bearer ${"A".repeat(9000)}`,
    `Bearer ${b64(json({ alg: "none", kid: "sbk_x" }))}.${b64(json({ exp: 9e9 }))}.`,
    `Bearer ${b64(json({ alg: "HS256", kid: "ses_nope" }))}.${b64(json({ exp: 9e9 }))}.${"x".repeat(43)}`,
    `Bearer ${b64(json({ alg: "HS256", kid: "../../etc" }))}.e30.e30`,
    `Bearer ${keyToken.slice(0, -2)}xx`, // a forged signature
    `Token ${keyToken}`,
    `Bearer ${keyToken} trailing`,
  ]);
const b64 = (text: string) => Buffer.from(text).toString("base64url");

const CONTENT_TYPES = [
  "text/plain",
  "application/xml",
  "multipart/form-data; boundary=zzz",
  "application/x-www-form-urlencoded",
  "application/json; charset=utf-16",
  "application/json; charset=utf-8; boundary=\u00ff",
  "",
  "*/*",
];

const NOISES: Array<[string, Noise]> = [
  [
    "path trick",
    (rng, request) => {
      const { path, query } = splitTarget(request.target);
      const segments = path.split("/").slice(1);
      const [name, trick] = rng.pick(PATH_TRICKS);
      request.target = trick(rng, segments, rng.int(segments.length)) + query;
      return name;
    },
  ],
  [
    "query junk",
    (rng, request) => {
      const junk = rng.pick(QUERY_JUNK);
      request.target += `${request.target.includes("?") ? "&" : "?"}${junk}`;
      return `query ${junk.slice(0, 40)}`;
    },
  ],
  [
    "duplicate authorization",
    (rng, request, auth) => {
      const mine = headerOf(request, "authorization")!;
      const second = rng.chance(0.5)
        ? mine
        : `Bearer ${auth === "admin" ? keyToken : api.adminToken}`;
      setHeader(request, "authorization", [mine, second]);
      return "duplicate authorization";
    },
  ],
  [
    "duplicate org header",
    (rng, request) => {
      const second = rng.pick([api.orgId, "org_otherOrgId00000000000", "org_x"]);
      setHeader(request, "x-statebacked-org-id", [api.orgId, second]);
      return `duplicate org header (${second === api.orgId ? "same" : "different"})`;
    },
  ],
  [
    "bad org header",
    (rng, request) => {
      const value = rng.pick([
        "",
        "org_",
        "org_../x",
        "ORG_x",
        "x".repeat(9000),
        "org_\u00fc",
        "null",
      ]);
      setHeader(request, "x-statebacked-org-id", [value]);
      return "bad org header";
    },
  ],
  [
    "act-as junk",
    (rng, request) => {
      const value = rng.pick(ACT_JUNK);
      setHeader(request, "x-statebacked-act", rng.chance(0.2) ? [value, value] : [value]);
      return `act-as ${value.slice(0, 20)}`;
    },
  ],
  [
    "missing authorization",
    (_rng, request) => {
      setHeader(request, "authorization", []);
      return "missing authorization";
    },
  ],
  [
    "junk authorization",
    (rng, request) => {
      setHeader(request, "authorization", [AUTH_JUNK(rng)]);
      return "junk authorization";
    },
  ],
  [
    "wrong content type",
    (rng, request) => {
      const value = rng.pick(CONTENT_TYPES);
      setHeader(request, "content-type", rng.chance(0.2) ? [value, "application/json"] : [value]);
      return `content-type ${JSON.stringify(value)}`;
    },
  ],
  [
    "missing content type",
    (_rng, request) => {
      setHeader(request, "content-type", []);
      return "no content-type";
    },
  ],
];

// ---- the cases -------------------------------------------------------------------------------

function generate(rng: Random): Case[] {
  const cases: Case[] = [];
  const table = targets();
  const missing = apiRoutes.map(routeKey).filter((key) => !table[key]);
  assert.deepEqual(missing, [], "every route needs a fuzz target");
  let counter = 0;
  const nextAuth = (): Auth => (counter++ % 2 === 0 ? "admin" : "key");
  const base = (route: Route, target: Target, auth: Auth): RawRequest => ({
    method: route.method,
    target: target.path,
    headers: [...authHeaders(auth), ["content-type", "application/json"]],
  });

  apiRoutes.forEach((route, routeIndex) => {
    const target = table[routeKey(route)]!;
    const defective = target.fields !== undefined;
    const mustFail = defective || target.mustFail === true;
    const add = (label: string, request: RawRequest, fail = mustFail) =>
      cases.push({ route, label, mustFail: fail, request });

    // Deterministic: every known-wrong value of every field, and every required field missing.
    for (const [name, field] of Object.entries(target.fields ?? {})) {
      for (const wrong of field.wrong) {
        const request = base(route, target, nextAuth());
        request.body = json({ ...target.valid, [name]: wrong });
        add(`${name} = ${json(wrong)?.slice(0, 40)}`, request);
      }
      if (field.required) {
        const request = base(route, target, nextAuth());
        request.body = json(omit(target.valid!, name));
        add(`without ${name}`, request);
      }
    }

    // Random: a body defect (when the route takes a body) plus one or two kinds of noise, cycling
    // through the kinds so each route meets most of them.
    for (let k = 0; k < ROUNDS; k++) {
      const auth = nextAuth();
      const request = base(route, target, auth);
      const labels: string[] = [];
      if (defective) {
        const { label, body } = bodyDefect(rng, target, k + routeIndex);
        request.body = body;
        labels.push(label);
      } else if (rng.chance(0.3)) {
        request.body = rng.chance(0.5) ? rng.pick(MALFORMED_JSON) : rng.bytes(rng.int(512));
        labels.push("junk body");
      }
      const [, first] = NOISES[(k + routeIndex) % NOISES.length]!;
      labels.push(first(rng, request, auth));
      if (rng.chance(0.5)) labels.push(rng.pick(NOISES)[1](rng, request, auth));
      add(`${auth}: ${labels.join(" + ")}`, request);
    }
  });

  const routeOf = (key: string) => apiRoutes.find((route) => routeKey(route) === key)!;
  const big = (key: string, label: string, body: RawRequest["body"], fail = true) => {
    const route = routeOf(key);
    const request: RawRequest = {
      method: route.method,
      target: table[key]!.path,
      headers: [...authHeaders(nextAuth()), ["content-type", "application/json"]],
      body,
    };
    cases.push({ route, label, mustFail: fail, request });
  };
  const huge = (bytes: number) => "x".repeat(bytes);
  big("POST /machines", "1 MB slug", json({ slug: huge(MB) }));
  big("POST /keys", "1 MB key name", json({ name: huge(MB), scopes: ["machines.read"] }));
  big("POST /orgs", "1 MB org name", json({ name: huge(MB) }));
  big(
    "POST /machines/:machineName",
    "1 MB context",
    json({ slug: "fz-big", context: { public: { blob: huge(MB) } } }),
  );
  big(
    "POST /machines/:machineName",
    "3.9 MB of escaped context",
    json({ slug: "fz-big2", context: { blob: "\u0001".repeat(650_000) } }),
  );
  big(
    "POST /machines/:machineName/i/:instanceName/events",
    "1 MB event type",
    json({ event: { type: huge(MB) } }),
  );
  big(
    "PUT /machines/:machineName/v/:signedMachineVersionId",
    "1 MB clientInfo",
    json({ clientInfo: huge(MB) }),
  );
  big("POST /machines", "5 MB body", json({ slug: "fz-5mb", indexes: [huge(5 * MB)] }));
  big(
    "POST /machines/:machineName/i/:instanceName/events",
    "5 MB chunked body",
    Array.from({ length: 5 }, () => Buffer.from(huge(MB))),
  );
  big(
    "PUT /machines/:machineName/i/:instanceName/status",
    "5 MB of whitespace",
    " ".repeat(5 * MB),
  );
  big(
    "DELETE /machines/:machineName/i/:instanceName",
    "5 MB of odd unicode",
    json({ x: oddString(rng, 2.5 * MB) }),
  );
  big("GET /machines", "a GET with a 5 MB body", huge(5 * MB), false);

  cases.push(...uploadCases(rng, routeOf("POST /code-uploads"), nextAuth));
  cases.push(...byteCases(routeOf));
  return cases;
}

const routeKey = (route: Route) => `${route.method} ${route.path}`;

type Part = { name: string; value: string | Buffer; filename?: string; type?: string };

function multipart(boundary: string, parts: Part[], close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? "" : `; filename="${part.filename}"`}`;
    chunks.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: ${disposition}\r\n${part.type ? `content-type: ${part.type}\r\n` : ""}\r\n`,
      ),
      Buffer.from(part.value),
      Buffer.from("\r\n"),
    );
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function uploadCases(rng: Random, route: Route, nextAuth: () => Auth): Case[] {
  const fields = (overrides: Record<string, string> = {}): Part[] =>
    Object.entries({ ...uploadFields, ...overrides }).map(([name, value]) => ({ name, value }));
  const file = (value: string | Buffer, filename = "wf.js"): Part => ({
    name: "file",
    value,
    filename,
    type: "application/javascript",
  });
  const code = "export default 1;";
  const boundary = "----fuzz" + rng.int(1e9);
  const form = `multipart/form-data; boundary=${boundary}`;
  const [org = "", machine = "", version = ""] = (uploadFields.key ?? "").split("/");
  const bomb = gzipSync(Buffer.alloc(11_000_000)); // 11 MB of zeros, unzipped
  const bodies: Array<[string, string, RawRequest["body"]]> = [
    ["multipart without boundary", "multipart/form-data", rng.bytes(2048)],
    ["random bytes", form, rng.bytes(4096)],
    [
      "random bytes that start like a part",
      form,
      Buffer.concat([Buffer.from(`--${boundary}\r\n`), rng.bytes(1024)]),
    ],
    ["unterminated form", form, multipart(boundary, [...fields(), file(code)], false)],
    ["no signed fields", form, multipart(boundary, [file(code)])],
    ["signed fields but no file", form, multipart(boundary, fields())],
    [
      "file as a plain field",
      form,
      multipart(boundary, [...fields(), { name: "file", value: code }]),
    ],
    [
      "forged signature",
      form,
      multipart(boundary, [...fields({ signature: "forged" }), file(code)]),
    ],
    ["expired link", form, multipart(boundary, [...fields({ expires: "1" }), file(code)])],
    [
      "expiry far away",
      form,
      multipart(boundary, [...fields({ expires: "9".repeat(16) }), file(code)]),
    ],
    [
      "key for another machine",
      form,
      multipart(boundary, [...fields({ key: `${org}/other/${version}` }), file(code)]),
    ],
    [
      "key with traversal",
      form,
      multipart(boundary, [...fields({ key: `${org}/../${machine}/${version}` }), file(code)]),
    ],
    [
      "forged signature first, then the real one",
      form,
      multipart(boundary, [
        { name: "key", value: uploadFields.key! },
        { name: "expires", value: uploadFields.expires! },
        { name: "signature", value: "forged" },
        { name: "signature", value: uploadFields.signature! },
        file(code),
      ]),
    ],
    [
      "signed, file not gzip despite magic bytes",
      form,
      multipart(boundary, [...fields(), file(Buffer.from([0x1f, 0x8b, 1, 2, 3, 4]))]),
    ],
    [
      "signed, file not UTF-8",
      form,
      multipart(boundary, [...fields(), file(Buffer.from([0xff, 0xfe, 0xc0, 0xaf]))]),
    ],
    ["signed, gzip bomb (11 MB unzipped)", form, multipart(boundary, [...fields(), file(bomb)])],
    [
      "signed, content-encoding gzip on plain text",
      form,
      multipart(boundary, [...fields(), { name: "content-encoding", value: "gzip" }, file(code)]),
    ],
    [
      "odd unicode field names and filename",
      form,
      multipart(boundary, [
        { name: oddString(rng, 8), value: oddString(rng, 8) },
        file(code, oddString(rng, 12)),
      ]),
    ],
    ["fields as JSON", "application/json", json({ ...uploadFields, file: code })],
    [
      "fields url-encoded",
      "application/x-www-form-urlencoded",
      new URLSearchParams({ ...uploadFields, file: code }).toString(),
    ],
    ["no content type", "", multipart(boundary, [...fields({ signature: "forged" }), file(code)])],
    [
      "1.2 MB form",
      form,
      multipart(boundary, [
        ...fields({ signature: "forged" }),
        file(Buffer.alloc(1_200_000, 0x61)),
      ]),
    ],
    [
      "5 MB chunked form",
      form,
      Array.from({ length: 5 }, (_, i) =>
        i === 0
          ? multipart(boundary, fields({ signature: "forged" }), false)
          : Buffer.alloc(MB, 0x61),
      ),
    ],
  ];
  return bodies.map(([label, contentType, body]) => {
    const headers: Header[] = rng.chance(0.5) ? authHeaders(nextAuth()) : [];
    if (contentType !== "") headers.push(["content-type", contentType]);
    return {
      route,
      label: `upload: ${label}`,
      mustFail: true,
      request: { method: "POST", target: uploadPath, headers, body },
    };
  });
}

/** Requests node:http will not send: raw bytes on a socket. */
function byteCases(routeOf: (key: string) => Route): Case[] {
  const auth = (): Header[] => [["host", "127.0.0.1"], ...authHeaders("admin")];
  const bytes = (target: string | Buffer) =>
    Buffer.isBuffer(target) ? target : Buffer.from(target, "utf8");
  const get = (label: string, key: string, target: string | Buffer, headers = auth()): Case => ({
    route: routeOf(key),
    label: `bytes: ${label}`,
    mustFail: false,
    bytes: requestBytes("GET", bytes(target), headers),
  });
  const post = (
    label: string,
    key: string,
    target: string,
    body: Buffer,
    headers = auth(),
  ): Case => ({
    route: routeOf(key),
    label: `bytes: ${label}`,
    mustFail: true,
    bytes: Buffer.concat([
      requestBytes("POST", target, [
        ...headers,
        ["content-type", "application/json"],
        ["content-length", String(body.length)],
      ]),
      body,
    ]),
  });
  const events = "POST /machines/:machineName/i/:instanceName/events";
  const eventsPath = `/machines/${MACHINE}/i/${INSTANCE}/events`;
  const raw = (label: string, key: string, text: string | Buffer, mustFail = false): Case => ({
    route: routeOf(key),
    label: `bytes: ${label}`,
    mustFail,
    bytes: bytes(text),
  });
  const token = api.adminToken;
  return [
    get("NUL in the path", "GET /machines/:machineName/i", `/machines/${MACHINE}\u0000/i`),
    get("raw UTF-8 in the path", "GET /machines/:machineName", "/machines/w\u00e9"),
    get(
      "raw RTL override and emoji in the path",
      "GET /machines/:machineName",
      "/machines/\u202e🙂",
    ),
    get(
      "raw lone surrogate bytes in the path",
      "GET /machines/:machineName",
      Buffer.concat([Buffer.from("/machines/a"), Buffer.from([0xed, 0xa0, 0x80])]),
    ),
    get(
      "raw 0xFF in the path",
      "GET /machines/:machineName/v",
      Buffer.concat([Buffer.from("/machines/"), Buffer.from([0xff]), Buffer.from("/v")]),
    ),
    get("absolute-form target", "GET /machines", "http://evil.example/machines"),
    get(
      "absolute-form target with userinfo",
      "GET /machines",
      "http://user:pass@127.0.0.1/machines",
    ),
    get("a 20 KB URL", "GET /machines/:machineName", `/machines/${"a".repeat(20_000)}`),
    get("no host header", "GET /machines", "/machines", authHeaders("admin")),
    get("host header junk", "GET /machines", "/machines", [
      ["host", "evil host:99999"],
      ...authHeaders("admin"),
    ]),
    get("two host headers", "GET /machines", "/machines", [
      ["host", "a"],
      ["host", "b"],
      ...authHeaders("admin"),
    ]),
    get("UTF-8 bytes in the token", "GET /machines", "/machines", [
      ["host", "x"],
      ["authorization", `Bearer t\u00f6k\u00e9n`],
    ]),
    get("NUL in a header value", "GET /machines", "/machines", [
      ["host", "x"],
      ["authorization", `Bearer ${token}\u0000`],
    ]),
    get("space in a header name", "GET /machines", "/machines", [
      ["host", "x"],
      ["bad header", "x"],
      ...authHeaders("admin"),
    ]),
    get(
      "UTF-8 in the act-as header",
      "GET /machines/:machineName/i/:instanceName",
      `/machines/${MACHINE}/i/${INSTANCE}`,
      [...auth(), ["x-statebacked-act", '{"sub":"\u00e9\u202e🙂"}']],
    ),
    post(
      "CESU-8 surrogate in a JSON string",
      events,
      eventsPath,
      Buffer.from([...Buffer.from('{"event":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')]),
    ),
    post(
      "0xFF in a JSON body",
      events,
      eventsPath,
      Buffer.from([...Buffer.from('{"event":{"type":"'), 0xff, ...Buffer.from('"}}')]),
    ),
    post("NUL bytes around the JSON", events, eventsPath, Buffer.from('\u0000{"event":42}\u0000')),
    raw(
      "content-length not a number",
      events,
      `POST ${eventsPath} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: abc\r\n\r\n{}`,
      true,
    ),
    raw(
      "content-length and chunked together",
      events,
      `POST ${eventsPath} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
      true,
    ),
    raw(
      "two different content-lengths",
      events,
      `POST ${eventsPath} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}`,
      true,
    ),
    raw(
      "bad chunk size",
      events,
      `POST ${eventsPath} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      true,
    ),
    raw(
      "unknown HTTP version",
      "GET /machines",
      "GET /machines HTTP/9.9\r\nhost: x\r\nconnection: close\r\n\r\n",
    ),
    raw(
      "HTTP/1.0 without a host",
      "GET /machines",
      `GET /machines HTTP/1.0\r\nauthorization: Bearer ${token}\r\n\r\n`,
    ),
    raw(
      "unknown method",
      "GET /machines",
      "FROB /machines HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    ),
    raw(
      "PATCH, which no route takes",
      events,
      `PATCH ${eventsPath} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${token}\r\ncontent-length: 2\r\n\r\n{}`,
      true,
    ),
    raw(
      "lowercase method",
      "GET /machines",
      "get /machines HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    ),
    raw(
      "header folding",
      "GET /machines",
      `GET /machines HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer\r\n ${token}\r\n\r\n`,
    ),
    ...upgradeCases(raw),
    raw(
      "bare LF line endings",
      "GET /machines",
      `GET /machines HTTP/1.1\nhost: x\nconnection: close\nauthorization: Bearer ${token}\n\n`,
    ),
  ];
}

/** WebSocket handshakes the realtime endpoint refuses before upgrading (HTTP status, JSON). */
function upgradeCases(
  raw: (label: string, key: string, text: string, mustFail: boolean) => Case,
): Case[] {
  const handshake = (target: string) =>
    `GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
    "sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  const org = `x-statebacked-org-id=${api.orgId}`;
  return [
    ["no token", "/rt"],
    ["junk token", "/rt?token=a.b.c"],
    ["lone surrogate token", "/rt?token=%ED%A0%80"],
    ["expired-looking token", `/rt?token=${keyToken.slice(0, -3)}abc&${org}`],
    ["an org it is not in", `/rt?token=${api.adminToken}&x-statebacked-org-id=org_zz`],
    ["an upgrade to another path", `/machines?token=${api.adminToken}&${org}`],
    ["an upgrade to a backslash path", "/r\\t?token=x"],
  ].map(([label, target]) => raw(`upgrade: ${label}`, "GET /rt", handshake(target!), true));
}

// ---- running ---------------------------------------------------------------------------------

async function run(c: Case): Promise<RawResponse> {
  return "request" in c ? sendRaw(api.url, c.request) : sendBytes(api.url, c.bytes);
}

const notImplemented = (route: Route) => notImplementedRoutes.includes(route);

/** What is wrong with one answer, if anything. */
function problemWith(c: Case, response: RawResponse): string | undefined {
  const { status } = response;
  let body: Json | undefined;
  try {
    body = JSON.parse(response.text) as Json;
  } catch {
    body = undefined;
  }
  if (status >= 500) {
    if (status === 501 && notImplemented(c.route) && body?.code === "not-implemented") return;
    return `answered ${status}`;
  }
  const method = "request" in c ? c.request.method : "";
  if (status >= 400 && method !== "HEAD") {
    if (!/application\/json/.test(response.headers["content-type"] ?? "")) {
      return `${status} without a JSON content type`;
    }
    if (typeof body?.error !== "string" || typeof body.code !== "string") {
      return `${status} without an {error, code} body`;
    }
  }
  if (c.mustFail && status < 400) return `accepted (${status}) a request built to fail`;
  return undefined;
}

before(async () => {
  api = await startApiServer();
  await api.deploy("workflow-v5.js", "v5-import", MACHINE);
  const created = await api.admin("POST", `/machines/${MACHINE}`, { slug: INSTANCE });
  assert.equal(created.status, 200);
  assert.equal(
    (await api.admin("POST", `/machines/${MACHINE}/i/${INSTANCE}/events`, { event: "inc" })).status,
    200,
  );
  const key = await api.createKey(SCOPES, "fuzz");
  keyToken = await api.tokenFor(key, { sub: "alice" });
  const finalizeOnly = await api.admin("POST", `/machines/${MACHINE}/v`);
  signedNoUpload = (finalizeOnly.body as { machineVersionId: string }).machineVersionId;
  const uploadOnly = await api.admin("POST", `/machines/${MACHINE}/v`);
  const upload = uploadOnly.body as {
    codeUploadUrl: string;
    codeUploadFields: Record<string, string>;
  };
  uploadFields = upload.codeUploadFields;
  uploadPath = new URL(upload.codeUploadUrl).pathname;
});

after(() => api.dispose());

test(`fuzzing every route (seed ${SEED}) breaks nothing and changes nothing`, async (t) => {
  const rng = new Random(SEED);
  const cases = generate(rng);
  const perRoute = new Map<string, number>();
  for (const c of cases)
    perRoute.set(routeKey(c.route), (perRoute.get(routeKey(c.route)) ?? 0) + 1);
  const routesHit = new Set(perRoute.keys());
  assert.deepEqual(
    apiRoutes.map(routeKey).filter((key) => !routesHit.has(key)),
    [],
    "routes fuzzed",
  );

  const before = await snapshotOrg(api);
  const problems: string[] = [];
  const statuses = new Map<number, number>();
  let i = 0;
  for (const c of cases) {
    let response: RawResponse;
    try {
      response = await run(c);
    } catch (err) {
      problems.push(`${routeKey(c.route)} [${c.label}]: no answer: ${String(err)}`);
      continue;
    }
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const problem = problemWith(c, response);
    if (problem) {
      problems.push(
        `${routeKey(c.route)} [${c.label}]: ${problem}: ${response.text.slice(0, 200)}`,
      );
    }
    // Still alive, now and then.
    if (++i % 100 === 0) {
      const health = await sendRaw(api.url, { method: "GET", target: "/openapi.json" });
      assert.equal(health.status, 200, `the server stopped answering after ${i} requests`);
    }
  }
  t.diagnostic(
    `seed ${SEED}: ${cases.length} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
  );
  t.diagnostic(`requests per route: ${JSON.stringify(Object.fromEntries(perRoute))}`);

  assert.deepEqual(
    problems,
    [],
    `${problems.length} bad answers (FUZZ_SEED=${SEED}):\n${problems.slice(0, 40).join("\n")}`,
  );

  const health = await sendRaw(api.url, { method: "GET", target: "/openapi.json" });
  assert.equal(health.status, 200, "the server answers after the fuzzing");
  const instance = await api.admin("GET", `/machines/${MACHINE}/i/${INSTANCE}`);
  assert.equal(instance.status, 200, "and still serves the instance");
  assert.deepEqual(await snapshotOrg(api), before, "the fuzzing changed the org's state");
  // The version whose code never arrived still has none.
  const finalize = await api.admin("PUT", `/machines/${MACHINE}/v/${signedNoUpload}`, {});
  assert.equal(finalize.status, 400);
  assert.equal((finalize.body as Json).parameter, "machineVersionId");
});

test("the snapshot sees a real change (so the comparison above can fail)", async () => {
  const before = await snapshotOrg(api);
  const sent = await api.admin("POST", `/machines/${MACHINE}/i/${INSTANCE}/events`, {
    event: "inc",
  });
  assert.equal(sent.status, 200);
  assert.notDeepEqual(await snapshotOrg(api), before);
});
