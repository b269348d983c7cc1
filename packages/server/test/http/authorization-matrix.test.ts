// The authorization matrix: every route of `apiRoutes` × every kind of caller, against a real
// server. Each route needs an entry below that builds a valid request for it (with any setup it
// needs), so a new route without one fails here. Callers: no token, an expired key token, another
// org's key holding every scope, a key holding every scope but the route's, a key holding exactly
// the route's scope, and the admin session. Another org's writes are checked to change nothing here.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { mintAdminSession } from "../../src/auth/admin-sessions.js";
import { SCOPES, type Scope } from "../../src/auth/scopes.js";
import { systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import type { Route } from "../../src/http/route.js";
import { apiRoutes } from "../../src/http/routes/all-routes.js";
import { notImplementedRoutes } from "../../src/http/routes/not-implemented.js";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { bundleFixture } from "../support/bundles.js";
import { listAll, snapshotOrg } from "./org-snapshot.js";

type Json = Record<string, unknown>;
type Headers = Record<string, string>;
/** One request: the path (with query), and a JSON body, a multipart form or a urlencoded one. */
type Call = {
  path: string;
  body?: unknown;
  form?: () => FormData;
  urlencoded?: Record<string, string>;
};
type Reply = { status: number; text: string; body: Json | undefined };
type Entry =
  | "not-implemented"
  | {
      /** A valid request, with fresh names and whatever it needs already set up. */
      build(): Promise<Call>;
      /** Checks that a successful call did its work. */
      done?(reply: Reply, call: Call): Promise<void>;
      /** A public route's one answer to everyone, when it is not the route's success status. */
      everyone?: Expected;
      /** What another org's key holding every scope gets (default 404 not-found), and a check. */
      crossOrg?: { status: number; check(reply: Reply, call: Call): Promise<void> };
    };
type Expected = { status: number; code?: string };
type CallerKind = "none" | "expired" | "other-org" | "no-scope" | "scope" | "admin";
type Caller = { kind: CallerKind; name: string; headers(): Promise<Headers> };

const ALICE = { sub: "alice" };
const IDP_SECRET = Buffer.from("matrix identity provider secret");
const MACHINE = "wf";
const VERSIONS = "vt";
const nowSeconds = () => Math.floor(Date.now() / 1000);
const hmac = (key: string, message: string) =>
  createHmac("sha256", key).update(message).digest("base64url");

let api: ApiServer;
let code: string;
let other: { orgId: string; key: ApiKey; token: string };
let expiredToken: string;
let readInstance: string;
let requests = 0;
let matrixCalls = 0;
let n = 0;
const fresh = (prefix: string) => `${prefix}-${++n}`;
/** Machines the other org created itself: the only ones it may ever list. */
const otherOrgMachines = new Set<string>();

async function send(method: string, call: Call, headers: Headers): Promise<Reply> {
  requests++;
  const all: Headers = { ...headers };
  let body: string | FormData | undefined;
  if (call.form) {
    body = call.form();
  } else if (call.urlencoded) {
    all["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(call.urlencoded).toString();
  } else {
    // Like the official client: JSON content type on every call, even without a body.
    all["content-type"] = "application/json";
    if (call.body !== undefined) body = JSON.stringify(call.body);
  }
  const response = await fetch(api.url + call.path, {
    method,
    headers: all,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let parsed: Json | undefined;
  try {
    parsed = text ? (JSON.parse(text) as Json) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, text, body: parsed };
}

const bearer = (token: string): Headers => ({ authorization: `Bearer ${token}` });
const adminHeaders = (): Headers => ({
  ...bearer(api.adminToken),
  "x-statebacked-org-id": api.orgId,
});

const tokens = new Map<string, Promise<string>>();
/** A token (act {sub:"alice"}) of a key of this org holding exactly `scopes`, made once. */
function keyToken(scopes: readonly Scope[]): Promise<string> {
  const id = [...scopes].sort().join(" ");
  let token = tokens.get(id);
  if (!token) {
    token = api.createKey(scopes, `matrix-${tokens.size}`).then((key) => api.tokenFor(key, ALICE));
    tokens.set(id, token);
  }
  return token;
}

async function admin(method: string, path: string, body?: unknown): Promise<Reply> {
  return send(method, { path, ...(body === undefined ? {} : { body }) }, adminHeaders());
}

async function newMachine(): Promise<string> {
  const slug = fresh("m");
  assert.equal((await admin("POST", "/machines", { slug })).status, 201);
  return slug;
}

async function newInstance(): Promise<string> {
  const slug = fresh("i");
  const created = await admin("POST", `/machines/${MACHINE}`, { slug });
  assert.equal(created.status, 200, created.text);
  return slug;
}

async function newKey(): Promise<string> {
  return (await api.createKey(["machines.read"], fresh("victim"))).id;
}

type Provisional = {
  machineVersionId: string;
  codeUploadUrl: string;
  codeUploadFields: Record<string, string>;
};

async function provisional(machine: string): Promise<Provisional> {
  const reply = await admin("POST", `/machines/${machine}/v`);
  assert.equal(reply.status, 200, reply.text);
  return reply.body as Provisional;
}

function uploadForm(fields: Record<string, string>, file: string): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.set(name, value);
  form.set("content-type", "application/javascript");
  form.set("file", new Blob([file], { type: "application/javascript" }), "vt.js");
  return form;
}

/** A provisional version of `vt` whose code is uploaded: ready to finalize. */
async function uploadedVersion(): Promise<string> {
  const version = await provisional(VERSIONS);
  const uploaded = await fetch(version.codeUploadUrl, {
    method: "POST",
    body: uploadForm(version.codeUploadFields, code),
  });
  assert.equal(uploaded.status, 204, await uploaded.text());
  return version.machineVersionId;
}

async function adminState(instance: string): Promise<Reply> {
  return admin("GET", `/machines/${MACHINE}/i/${instance}/admin`);
}

/** A fresh identity provider (HS256, matched by iss alone) in this org; answers its iss. */
async function newIdp(): Promise<string> {
  const iss = `https://${fresh("idp")}.example/`;
  const reply = await admin("POST", "/idps", {
    iss,
    algs: ["HS256"],
    key: IDP_SECRET.toString("base64url"),
    mapping: { "sub.$": "$.sub" },
  });
  assert.equal(reply.status, 204, reply.text);
  return iss;
}

/** A fresh token provider in this org, signing with a key that holds only `scopes`. */
async function newTokenProvider(scopes: readonly Scope[] = ["tokens.admin"]): Promise<string> {
  const service = fresh("svc");
  const key = await api.createKey(scopes, `for-${service}`);
  const reply = await admin("POST", "/token-providers", {
    service,
    keyId: key.id,
    mapping: { "sub.$": "$.sub" },
  });
  assert.equal(reply.status, 204, reply.text);
  return service;
}

async function listedIssuers(headers?: Headers): Promise<unknown[]> {
  const reply = await send("GET", { path: "/idps" }, headers ?? adminHeaders());
  return (reply.body?.idps as Json[]).map((idp) => idp.iss);
}

async function listedServices(headers?: Headers): Promise<unknown[]> {
  const reply = await send("GET", { path: "/token-providers" }, headers ?? adminHeaders());
  return (reply.body?.tokenProviders as Json[]).map((provider) => provider.service);
}

/** An HS256 identity token signed with IDP_SECRET, as an identity provider would issue it. */
function idpToken(claims: Json): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = createHmac("sha256", IDP_SECRET).update(input).digest("base64url");
  return `${input}.${signature}`;
}

async function keyIds(): Promise<string[]> {
  return (await listAll(api, "/keys", "keys")).map((key) => key.id as string);
}

const deleteBody = (field: string, machine: string, name: string) => ({
  dangerDataWillBeDeletedForever: true,
  [field]: hmac(machine, name),
});

const table: Record<string, Entry> = {
  "GET /orgs": { build: () => Promise.resolve({ path: "/orgs" }) },
  "POST /orgs": {
    build: () => Promise.resolve({ path: "/orgs", body: { name: fresh("org") } }),
    async done(reply) {
      const orgs = await listAll(api, "/orgs", "orgs");
      assert.ok(orgs.some((org) => org.id === reply.body?.id));
    },
  },
  "GET /keys": {
    build: () => Promise.resolve({ path: "/keys" }),
    crossOrg: {
      status: 200,
      async check(reply) {
        const listed = (reply.body?.keys as Json[]).map((key) => key.id as string);
        assert.ok(listed.includes(other.key.id), "the other org sees its own key");
        const ours = await keyIds();
        assert.deepEqual(
          listed.filter((id) => ours.includes(id)),
          [],
          "it sees none of ours",
        );
      },
    },
  },
  "POST /keys": {
    build: () =>
      Promise.resolve({ path: "/keys", body: { name: fresh("key"), scopes: ["org.keys.write"] } }),
    async done(reply) {
      assert.match(String(reply.body?.id), /^sbk_/);
      assert.match(String(reply.body?.key), /^sbsec_/);
      const listed = await listAll(api, "/keys", "keys");
      const created = listed.find((key) => key.id === reply.body?.id);
      assert.deepEqual(created?.scopes, ["org.keys.write"]);
    },
    crossOrg: {
      // Its own org's key: the other org may create keys, in its own org only.
      status: 200,
      async check(reply) {
        const id = reply.body?.id as string;
        assert.ok(!(await keyIds()).includes(id), "the key is not in this org");
        const theirs = await send("GET", { path: "/keys" }, bearer(other.token));
        assert.ok((theirs.body?.keys as Json[]).some((key) => key.id === id));
      },
    },
  },
  "DELETE /keys/:keyId": {
    build: async () => ({ path: `/keys/${await newKey()}` }),
    async done(_reply, call) {
      assert.ok(!(await keyIds()).includes(call.path.slice("/keys/".length)), "the key is gone");
    },
  },
  "GET /machines": {
    build: () => Promise.resolve({ path: "/machines" }),
    done(reply) {
      const slugs = (reply.body?.machines as Json[]).map((machine) => machine.slug);
      assert.ok(slugs.includes(MACHINE));
      return Promise.resolve();
    },
    crossOrg: {
      status: 200,
      check(reply) {
        const slugs = (reply.body?.machines as Json[]).map((machine) => machine.slug as string);
        assert.deepEqual(
          slugs.filter((slug) => !otherOrgMachines.has(slug)),
          [],
          "the other org lists only the machines it created",
        );
        return Promise.resolve();
      },
    },
  },
  "POST /machines": {
    build: () => Promise.resolve({ path: "/machines", body: { slug: fresh("m") } }),
    async done(_reply, call) {
      const slug = (call.body as { slug: string }).slug;
      assert.equal((await admin("GET", `/machines/${slug}`)).status, 200);
    },
    crossOrg: {
      status: 201,
      async check(_reply, call) {
        const slug = (call.body as { slug: string }).slug;
        otherOrgMachines.add(slug);
        assert.equal((await admin("GET", `/machines/${slug}`)).status, 404, "not in this org");
        const theirs = await send("GET", { path: `/machines/${slug}` }, bearer(other.token));
        assert.equal(theirs.status, 200, "in the other org");
      },
    },
  },
  "GET /machines/:machineName": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}` }),
    done(reply) {
      const machine = reply.body?.machine as Json;
      assert.equal(typeof (machine.currentVersion as Json).id, "string");
      return Promise.resolve();
    },
  },
  "DELETE /machines/:machineName": {
    async build() {
      const machine = await newMachine();
      return {
        path: `/machines/${machine}`,
        body: deleteBody("hmacSha256OfMachineNameWithMachineNameKey", machine, machine),
      };
    },
    async done(_reply, call) {
      assert.equal((await admin("GET", call.path)).status, 404);
    },
  },
  "GET /machines/:machineName/v": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}/v` }),
    done(reply) {
      assert.equal((reply.body?.versions as Json[]).length, 1);
      return Promise.resolve();
    },
  },
  "POST /machines/:machineName/v": {
    build: () => Promise.resolve({ path: `/machines/${VERSIONS}/v` }),
    done(reply) {
      assert.equal(typeof reply.body?.machineVersionId, "string");
      assert.match(String(reply.body?.codeUploadUrl), /^http:\/\//);
      assert.equal(typeof reply.body?.codeUploadFields, "object");
      return Promise.resolve();
    },
  },
  "PUT /machines/:machineName/v/:signedMachineVersionId": {
    build: async () => ({
      path: `/machines/${VERSIONS}/v/${await uploadedVersion()}`,
      body: { clientInfo: "matrix" },
    }),
    async done(reply) {
      const id = reply.body?.machineVersionId;
      assert.match(String(id), /^ver_/);
      const versions = await listAll(api, `/machines/${VERSIONS}/v`, "versions");
      assert.ok(versions.some((version) => version.id === id && version.clientInfo === "matrix"));
    },
  },
  "POST /code-uploads": {
    async build() {
      const version = await provisional(VERSIONS);
      return {
        path: new URL(version.codeUploadUrl).pathname,
        form: () => uploadForm(version.codeUploadFields, code),
        version,
      } as Call;
    },
    async done(_reply, call) {
      // The code landed: the version can be finalized now.
      const { version } = call as Call & { version: Provisional };
      const path = `/machines/${VERSIONS}/v/${version.machineVersionId}`;
      const finalized = await admin("PUT", path, {});
      assert.equal(finalized.status, 200, finalized.text);
    },
  },
  "POST /machines/:machineName": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}`, body: { slug: fresh("i") } }),
    async done(reply, call) {
      assert.equal(reply.body?.state, "idle");
      const created = await adminState((call.body as { slug: string }).slug);
      assert.equal(created.status, 200);
    },
  },
  "GET /machines/:machineName/i": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}/i` }),
    done(reply) {
      const slugs = (reply.body?.instances as Json[]).map((instance) => instance.slug);
      assert.ok(slugs.includes(readInstance));
      return Promise.resolve();
    },
  },
  "GET /machines/:machineName/i/:instanceName": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}/i/${readInstance}` }),
    done(reply) {
      assert.equal(reply.body?.state, "idle");
      assert.deepEqual(reply.body?.publicContext, { count: 0, note: "default" });
      return Promise.resolve();
    },
  },
  "DELETE /machines/:machineName/i/:instanceName": {
    async build() {
      const instance = await newInstance();
      return {
        path: `/machines/${MACHINE}/i/${instance}`,
        body: deleteBody("hmacSha256OfMachineInstanceNameWithMachineNameKey", MACHINE, instance),
      };
    },
    async done(_reply, call) {
      assert.equal((await admin("GET", `${call.path}/admin`)).status, 404);
    },
  },
  "GET /machines/:machineName/i/:instanceName/admin": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}/i/${readInstance}/admin` }),
    done(reply) {
      assert.equal((reply.body?.context as Json).secret, "hidden");
      return Promise.resolve();
    },
  },
  "GET /machines/:machineName/i/:instanceName/events": {
    build: () => Promise.resolve({ path: `/machines/${MACHINE}/i/${readInstance}/events` }),
    done(reply) {
      assert.ok(Array.isArray(reply.body?.transitions));
      return Promise.resolve();
    },
  },
  "POST /machines/:machineName/i/:instanceName/events": {
    build: async () => ({
      path: `/machines/${MACHINE}/i/${await newInstance()}/events`,
      body: { event: { type: "inc" } },
    }),
    done(reply) {
      assert.deepEqual(reply.body?.publicContext, { count: 1, note: "default" });
      return Promise.resolve();
    },
  },
  "PUT /machines/:machineName/i/:instanceName/status": {
    build: async () => ({
      path: `/machines/${MACHINE}/i/${await newInstance()}/status`,
      body: { status: "paused" },
    }),
    async done(_reply, call) {
      const state = await admin("GET", call.path.replace(/\/status$/, "/admin"));
      assert.equal(state.body?.status, "paused");
    },
  },
  "GET /healthz": {
    build: () => Promise.resolve({ path: "/healthz" }),
    done(reply) {
      assert.deepEqual(reply.body, { status: "ok" });
      return Promise.resolve();
    },
  },
  // A plain GET of the WebSocket endpoint (the socket itself is tested with the realtime code).
  "GET /rt": {
    build: () => Promise.resolve({ path: "/rt" }),
    everyone: { status: 426, code: "upgrade-required" },
  },
  "GET /idps": {
    build: async () => {
      await newIdp();
      return { path: "/idps" };
    },
    done(reply) {
      const idps = reply.body?.idps as Json[];
      assert.ok(idps.length >= 2, "the anonymous-session provider and the test's");
      for (const idp of idps) assert.ok(!("key" in idp), "secret keys are never listed");
      return Promise.resolve();
    },
    crossOrg: {
      status: 200,
      async check(reply) {
        const ours = await listedIssuers();
        const theirs = (reply.body?.idps as Json[]).map((idp) => idp.iss);
        assert.deepEqual(
          theirs.filter((iss) => ours.includes(iss)),
          [],
          "it sees none of ours",
        );
      },
    },
  },
  "POST /idps": {
    build: () =>
      Promise.resolve({
        path: "/idps",
        body: {
          iss: `https://${fresh("idp")}.example/`,
          algs: ["HS256", "HS512"],
          key: IDP_SECRET.toString("base64url"),
          mapping: { "sub.$": "$.sub", role: "user" },
        },
      }),
    async done(_reply, call) {
      assert.ok((await listedIssuers()).includes((call.body as Json).iss));
    },
    crossOrg: {
      // Its own org's identity provider: made there, not here.
      status: 204,
      async check(_reply, call) {
        const iss = (call.body as Json).iss;
        assert.ok(!(await listedIssuers()).includes(iss), "not in this org");
        assert.ok((await listedIssuers(bearer(other.token))).includes(iss), "in the other org");
      },
    },
  },
  "DELETE /idps": {
    build: async () => ({ path: "/idps", body: { iss: await newIdp() } }),
    async done(_reply, call) {
      assert.ok(!(await listedIssuers()).includes((call.body as Json).iss), "it is gone");
    },
  },
  "GET /token-providers": {
    build: async () => {
      await newTokenProvider();
      return { path: "/token-providers" };
    },
    done(reply) {
      const services = (reply.body?.tokenProviders as Json[]).map((p) => p.service);
      assert.ok(services.includes("anonymous-statebacked-dev"));
      return Promise.resolve();
    },
    crossOrg: {
      status: 200,
      async check(reply) {
        const ours = (await listAll(api, "/token-providers", "tokenProviders")).map((p) => p.keyId);
        const theirs = (reply.body?.tokenProviders as Json[]).map((p) => p.keyId);
        assert.deepEqual(
          theirs.filter((keyId) => ours.includes(keyId)),
          [],
          "it sees none of ours",
        );
      },
    },
  },
  "POST /token-providers": {
    // The key holds tokens.admin only: a caller may name only keys whose scopes it holds.
    build: async () => ({
      path: "/token-providers",
      body: {
        service: fresh("svc"),
        keyId: (await api.createKey(["tokens.admin"], fresh("tp-key"))).id,
        mapping: { "sub.$": "$.sub" },
      },
    }),
    async done(_reply, call) {
      assert.ok((await listedServices()).includes((call.body as Json).service));
    },
  },
  "DELETE /token-providers/:service": {
    build: async () => ({ path: `/token-providers/${await newTokenProvider()}` }),
    async done(_reply, call) {
      const service = call.path.slice("/token-providers/".length);
      assert.ok(!(await listedServices()).includes(service), "it is gone");
    },
  },
  "POST /tokens": {
    async build() {
      const iss = await newIdp();
      const service = await newTokenProvider(["state.read"]);
      const now = nowSeconds();
      return {
        path: "/tokens",
        urlencoded: {
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          audience: `https://tokens.statebacked.dev/${api.orgId}/${service}`,
          requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
          subject_token: idpToken({ iss, sub: "alice", iat: now, exp: now + 600 }),
        },
      };
    },
    async done(reply) {
      // The exchanged token reads the instance as alice (allowRead refuses only mallory).
      const token = reply.body?.access_token as string;
      const read = await send(
        "GET",
        { path: `/machines/${MACHINE}/i/${readInstance}` },
        bearer(token),
      );
      assert.equal(read.status, 200, read.text);
    },
  },
  "PUT /machines/:machineName/i/:instanceName/v": "not-implemented",
  "POST /machines/:machineName/migrations": "not-implemented",
  "PUT /machines/:machineName/migrations/:signedMigrationId": "not-implemented",
  "GET /machines/:machineName/indexes/:index/query": "not-implemented",
  "GET /logs": "not-implemented",
  "GET /billing": "not-implemented",
  "POST /org-members": "not-implemented",
  "PUT /:invitationCode": "not-implemented",
};

const routeKey = (route: Route) => `${route.method} ${route.path}`;

function callersFor(route: Route): Caller[] {
  const { access } = route;
  const scoped =
    access.kind === "org"
      ? access.anyScope.map((scope): Caller => ({
          kind: "scope",
          name: `a key holding only ${scope}`,
          headers: async () => bearer(await keyToken([scope])),
        }))
      : [
          {
            kind: "scope" as const,
            name: "a key holding every scope",
            headers: async () => bearer(await keyToken(SCOPES)),
          },
        ];
  const lacking =
    access.kind === "org"
      ? SCOPES.filter((scope) => !access.anyScope.includes(scope))
      : ["org.read" as const];
  return [
    { kind: "none", name: "no token", headers: () => Promise.resolve({}) },
    {
      kind: "expired",
      name: "an expired key token",
      headers: () => Promise.resolve(bearer(expiredToken)),
    },
    {
      kind: "other-org",
      // It names this org in the org header too: a key's org is its own, whatever it says.
      name: "another org's key holding every scope",
      headers: () => Promise.resolve({ ...bearer(other.token), "x-statebacked-org-id": api.orgId }),
    },
    {
      kind: "no-scope",
      name: `a key holding ${access.kind === "org" ? "every scope but the route's" : "org.read"}`,
      headers: async () => bearer(await keyToken(lacking)),
    },
    ...scoped,
    { kind: "admin", name: "the admin session", headers: () => Promise.resolve(adminHeaders()) },
  ];
}

function expectedFor(route: Route, entry: Entry, caller: Caller): Expected {
  const success = { status: route.status };
  if (entry === "not-implemented") return { status: 501, code: "not-implemented" };
  const { access } = route;
  if (access.kind === "public") return entry.everyone ?? success;
  if (caller.kind === "none") return { status: 403, code: "token-missing" };
  if (caller.kind === "expired") return { status: 403, code: "token-expired" };
  if (caller.kind === "admin") return success;
  if (access.kind === "user") return { status: 403, code: "missing-user" };
  if (caller.kind === "no-scope") return { status: 403, code: "missing-scope" };
  if (caller.kind === "other-org") {
    return entry.crossOrg ? { status: entry.crossOrg.status } : { status: 404, code: "not-found" };
  }
  return success;
}

/** A request to a not-implemented route: any names will do. */
function placeholderCall(route: Route): Call {
  const path = route.path.replace(/:[A-Za-z]+/g, "x1");
  return route.method === "GET" ? { path } : { path, body: {} };
}

function pathPattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/:[A-Za-z]+/g, "[^/]+")}$`);
}

before(async () => {
  api = await startApiServer();
  code = await bundleFixture("workflow-v5.js", "v5-import");
  await api.deploy("workflow-v5.js", "v5-import", MACHINE);
  assert.equal((await admin("POST", "/machines", { slug: VERSIONS })).status, 201);
  const theirs = await api.otherOrg([...SCOPES]);
  other = { ...theirs, token: await api.tokenFor(theirs.key, ALICE) };
  const everything = await api.createKey(SCOPES, "everything");
  expiredToken = await api.tokenFor(everything, ALICE, nowSeconds() - 120);
  readInstance = await newInstance();
});

after(() => api.dispose());

describe("authorization matrix", () => {
  test("the table has an entry for every route and no stale ones", () => {
    const routes = new Set(apiRoutes.map(routeKey));
    assert.deepEqual(
      Object.keys(table).filter((key) => !routes.has(key)),
      [],
      "entries for routes that no longer exist",
    );
  });

  for (const route of apiRoutes) {
    const key = routeKey(route);
    test(key, async () => {
      const entry = table[key];
      assert.ok(entry, `no matrix entry for ${key}: add one that builds a valid request`);
      assert.equal(
        entry === "not-implemented",
        notImplementedRoutes.includes(route),
        `${key}: the entry must say "not-implemented" exactly when the route is`,
      );
      const answers = new Set<number>();
      for (const caller of callersFor(route)) {
        const headers = await caller.headers();
        const call = entry === "not-implemented" ? placeholderCall(route) : await entry.build();
        assert.match(call.path.split("?")[0]!, pathPattern(route.path), `${key}: built path`);
        const expected = expectedFor(route, entry, caller);
        // Another org's writes must leave this org exactly as it was.
        const watch =
          caller.kind === "other-org" && route.access.kind === "org" && route.method !== "GET";
        const before = watch ? await snapshotOrg(api) : undefined;
        const reply = await send(route.method, call, headers);
        matrixCalls++;
        const where = `${key} as ${caller.name}: ${reply.status} ${reply.text.slice(0, 300)}`;
        assert.equal(reply.status, expected.status, where);
        answers.add(reply.status);
        if (expected.code !== undefined) assert.equal(reply.body?.code, expected.code, where);
        if (reply.status >= 400) {
          assert.equal(typeof reply.body?.error, "string", where);
          assert.equal(typeof reply.body?.code, "string", where);
        } else if (reply.status === 200) {
          assert.equal(typeof reply.body, "object", `${where}: a 200 answers a JSON object`);
        } else {
          assert.equal(reply.text, "", `${where}: 201 and 204 answer no body`);
        }
        if (entry !== "not-implemented") {
          if (caller.kind === "other-org" && entry.crossOrg) {
            await entry.crossOrg.check(reply, call);
          } else if (reply.status === route.status && entry.done) {
            await entry.done(reply, call);
          }
        }
        if (before) {
          assert.deepEqual(await snapshotOrg(api), before, `${where}: changed this org`);
        }
      }
      if (route.access.kind === "public") {
        assert.equal(answers.size, 1, `${key}: a public route answers every caller the same`);
      }
    });
  }
});

describe("authentication and act-as", () => {
  const get = (path: string, headers: Headers) => send("GET", { path }, headers);
  const post = (path: string, body: unknown, headers: Headers) =>
    send("POST", { path, body }, headers);
  const act = (claims: unknown): Headers => ({ "x-statebacked-act": JSON.stringify(claims) });

  test("a deleted key's tokens stop verifying: 403 token-unknown-key", async () => {
    const key = await api.createKey(["machines.read"], "doomed");
    const token = await api.tokenFor(key, ALICE);
    assert.equal((await get("/machines", bearer(token))).status, 200);
    assert.equal((await admin("DELETE", `/keys/${key.id}`)).status, 204);
    const reply = await get("/machines", bearer(token));
    assert.equal(reply.status, 403, reply.text);
    assert.equal(reply.body?.code, "token-unknown-key");
  });

  test("act-as with a key lacking org.keys.write is refused (403) and does nothing", async () => {
    const instance = await newInstance();
    const token = await keyToken(["instances.write", "state.read"]);
    const path = `/machines/${MACHINE}/i/${instance}`;
    const before = await adminState(instance);
    const sent = await post(
      `${path}/events`,
      { event: "inc" },
      { ...bearer(token), ...act(ALICE) },
    );
    assert.equal(sent.status, 403, sent.text);
    assert.equal(sent.body?.code, "missing-scope");
    const read = await get(path, { ...bearer(token), ...act(ALICE) });
    assert.equal(read.status, 403, read.text);
    assert.equal(read.body?.code, "missing-scope");
    const created = await post(
      `/machines/${MACHINE}`,
      { slug: fresh("i") },
      { ...bearer(token), ...act(ALICE) },
    );
    assert.equal(created.status, 403, created.text);
    assert.deepEqual((await adminState(instance)).body, before.body);
    // The same key without the header works: the refusal was the header's.
    assert.equal((await post(`${path}/events`, { event: "inc" }, bearer(token))).status, 200);
  });

  test("act-as from the admin session is what the machine's authorizers see", async () => {
    const instance = await newInstance();
    const path = `/machines/${MACHINE}/i/${instance}`;
    const asMallory = { ...adminHeaders(), ...act({ sub: "mallory" }) };
    const sent = await post(`${path}/events`, { event: { type: "inc" } }, asMallory);
    assert.equal(sent.status, 403, sent.text);
    assert.equal(sent.body?.code, "rejected-by-machine-authorizer");
    const read = await get(path, asMallory);
    assert.equal(read.status, 403, read.text);
    assert.equal(read.body?.code, "rejected-by-machine-authorizer");
    const slug = fresh("i");
    const created = await post(`/machines/${MACHINE}`, { slug }, asMallory);
    assert.equal(created.status, 403, created.text);
    assert.equal(created.body?.code, "rejected-by-machine-authorizer");
    assert.equal((await adminState(slug)).status, 404, "mallory's instance was not created");

    const asAlice = { ...adminHeaders(), ...act(ALICE) };
    const allowed = await post(`${path}/events`, { event: { type: "inc" } }, asAlice);
    assert.equal(allowed.status, 200, allowed.text);
    assert.deepEqual(allowed.body?.publicContext, { count: 1, note: "default" });
    const state = await adminState(instance);
    assert.equal(((state.body?.context as Json).public as Json).count, 1, "only alice's event");
  });

  test("an act-as header with a key named __proto__ is refused (400), as in a body", async () => {
    const instance = await newInstance();
    const path = `/machines/${MACHINE}/i/${instance}/events`;
    const before = await adminState(instance);
    for (const header of [
      '{"sub":"alice","__proto__":{"role":"admin"}}',
      '{"\\u005f_proto__":{}}',
    ]) {
      const headers = { ...adminHeaders(), "x-statebacked-act": header };
      const sent = await post(path, { event: { type: "inc" } }, headers);
      assert.equal(sent.status, 400, `${header}: ${sent.text}`);
      assert.equal(sent.body?.code, "invalid-parameter");
      assert.equal(sent.body?.parameter, "x-statebacked-act");
    }
    assert.deepEqual((await adminState(instance)).body, before.body);
  });

  test("act-as replaces a key token's own claims when the key holds org.keys.write", async () => {
    const instance = await newInstance();
    const path = `/machines/${MACHINE}/i/${instance}/events`;
    const key = await api.createKey(["org.keys.write", "instances.write"], "acting");
    const mallory = bearer(await api.tokenFor(key, { sub: "mallory" }));
    const refused = await post(path, { event: "inc" }, mallory);
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.body?.code, "rejected-by-machine-authorizer");
    const asAlice = await post(path, { event: "inc" }, { ...mallory, ...act(ALICE) });
    assert.equal(asAlice.status, 200, asAlice.text);
    const alice = bearer(await api.tokenFor(key, ALICE));
    const asMallory = await post(path, { event: "inc" }, { ...alice, ...act({ sub: "mallory" }) });
    assert.equal(asMallory.status, 403, asMallory.text);
    assert.equal(asMallory.body?.code, "rejected-by-machine-authorizer");
  });

  test("a key cannot create a key with scopes it does not hold (403 missing-scope)", async () => {
    const headers = bearer(await keyToken(["org.keys.write"]));
    const before = await keyIds();
    for (const body of [
      { name: "wider", scopes: ["machines.read"] },
      { name: "wider", scopes: ["org.keys.write", "tokens.admin"] },
      { name: "preset", use: "production" },
      { name: "preset", use: "ci" },
    ]) {
      const reply = await post("/keys", body, headers);
      assert.equal(reply.status, 403, `${JSON.stringify(body)}: ${reply.text}`);
      assert.equal(reply.body?.code, "missing-scope");
    }
    assert.deepEqual(await keyIds(), before, "no key was created");
    const same = await post("/keys", { name: "same", scopes: ["org.keys.write"] }, headers);
    assert.equal(same.status, 200, same.text);
  });

  test("an admin session naming an org it is not a member of gets 404", async () => {
    // A second user, with an org of their own that the bootstrap admin does not belong to.
    const { store } = api.server.backstate;
    const userId = randomIds("usr");
    await store.createUser({ id: userId, name: "stranger", createdAt: Date.now() });
    const session = await mintAdminSession(store, randomIds, systemClock, userId);
    const stranger = bearer(session.token);
    const made = await post("/orgs", { name: "stranger's", allowAnonymousAccess: false }, stranger);
    assert.equal(made.status, 200, made.text);
    const theirOrg = made.body?.id as string;

    const intoTheirs = { ...bearer(api.adminToken), "x-statebacked-org-id": theirOrg };
    for (const [method, path, body] of [
      ["GET", "/machines", undefined],
      ["GET", "/keys", undefined],
      ["POST", "/machines", { slug: "intruder" }],
      ["POST", "/keys", { name: "intruder", scopes: ["machines.read"] }],
    ] as const) {
      const reply = await send(method, { path, body }, intoTheirs);
      assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
      assert.equal(reply.body?.code, "not-found");
    }
    const theirMachines = await get("/machines", stranger);
    assert.deepEqual(theirMachines.body?.machines, [], "nothing was created in their org");
    const theirKeys = await get("/keys", stranger);
    assert.deepEqual(theirKeys.body?.keys, []);

    const intoOurs = { ...stranger, "x-statebacked-org-id": api.orgId };
    assert.equal((await get("/machines", intoOurs)).status, 404, "and they cannot reach ours");
    const nowhere = { ...bearer(api.adminToken), "x-statebacked-org-id": "org_doesNotExist000000" };
    assert.equal((await get("/machines", nowhere)).status, 404);
    const unnamed = await get("/machines", bearer(api.adminToken));
    assert.equal(unnamed.status, 400, "a member of several orgs must name one");
    assert.equal(unnamed.body?.code, "specify-org");
  });

  test("the upload URL ignores tokens: forged or missing fields are 400 for every caller", async () => {
    const version = await provisional(VERSIONS);
    const path = new URL(version.codeUploadUrl).pathname;
    const forged = { ...version.codeUploadFields, signature: "forged" };
    const [org = "", , id = ""] = (version.codeUploadFields.key ?? "").split("/");
    const elsewhere = { ...version.codeUploadFields, key: [org, MACHINE, id].join("/") };
    for (const caller of callersFor(apiRoutes.find((r) => r.path === path)!)) {
      for (const fields of [forged, elsewhere, {}]) {
        const reply = await send(
          "POST",
          { path, form: () => uploadForm(fields, code) },
          await caller.headers(),
        );
        assert.equal(reply.status, 400, `${caller.name}: ${reply.text}`);
        assert.equal(reply.body?.code, "invalid-parameter");
      }
    }
    // Nothing was stored for the version: finalizing finds no code.
    const finalize = await admin("PUT", `/machines/${VERSIONS}/v/${version.machineVersionId}`, {});
    assert.equal(finalize.status, 400, finalize.text);
  });

  test("request count", (t) => {
    t.diagnostic(
      `authorization matrix: ${matrixCalls} route × caller checks, ${requests} requests in all ` +
        "(setup included; org snapshots not counted)",
    );
  });
});
