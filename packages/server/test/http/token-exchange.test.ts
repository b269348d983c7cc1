// Token exchange end to end: a local identity provider on loopback (RS256 and ES256 key pairs
// served as JWKS by a node:http server, and an HS256 secret), the real @statebacked/client@0.1.37
// configured with `identityProviderToken` + `tokenProviderService` and with `anonymous`, and a
// machine whose allowWrite checks the mapped claims. Then every way an exchange must be refused,
// each with its OAuth error and our code. The server runs with the development JWKS option
// (loopback allowed); the tests of the default policy swap in a strict TokenExchange.
import assert from "node:assert/strict";
import { createHmac, createPrivateKey, createPublicKey, type JsonWebKey } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { StateBackedClient } from "@statebacked/client";
import { errors } from "@statebacked/client";
import {
  SignJWT,
  exportJWK,
  generateKeyPair,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from "jose";
import { TokenExchange } from "../../src/auth/token-exchange/exchange.js";
import { startApiServer, type ApiResponse, type ApiServer } from "../support/api-server.js";
import { adminClient, officialClient } from "../support/official-client.js";

type Json = Record<string, unknown>;

const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
const IDP_ISSUER = "https://login.example.test/";
const IDP_AUDIENCE = "notes-api";
const HS_ISSUER = "https://hs.example.test/";
const HS_SECRET = Buffer.from("an HS256 secret shared with the identity provider");
const SERVICE = "notes-app";
const MACHINE = "notes";
/** The JWKS cache's cooldown on this server: short, so the rotation test need not wait 30 s. */
const COOLDOWN_MS = 1500;

// allowWrite accepts editors writing their own instance (claims mapped from the IdP's token), and
// anonymous sessions writing the instance named by their sid, when their authContext is exactly
// { sid, did, auth }. allowRead: the same owners.
const NOTES = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "notes",
  initial: "open",
  context: { public: { notes: [] } },
  states: {
    open: {
      on: {
        add: { actions: assign({ public: ({ context, event }) => ({ notes: [...context.public.notes, event.text] }) }) },
      },
    },
  },
});
const owner = ({ machineInstanceName, authContext }) =>
  authContext.auth === "anonymous"
    ? authContext.sid === machineInstanceName
    : authContext.sub === machineInstanceName;
export const allowRead = (request) => owner(request);
export const allowWrite = (request) => {
  const { authContext } = request;
  if (!owner(request)) return false;
  if (authContext.auth === "anonymous") {
    return Object.keys(authContext).sort().join(",") === "auth,did,sid" && typeof authContext.did === "string";
  }
  return authContext.role === "editor" && authContext.via === "test-idp" &&
    authContext.profile?.email === authContext.sub + "@example.test";
};
`;

// ---- a local identity provider ---------------------------------------------------------------

type Served = { status: number; body: string; headers?: Record<string, string> };

class LocalIdp {
  readonly hits = new Map<string, number>();
  readonly routes = new Map<string, () => Served>();
  #server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.#server = createServer((request, response) => {
      const path = new URL(request.url ?? "/", "http://x").pathname;
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const route = this.routes.get(path);
      const served = route ? route() : { status: 404, body: "not found" };
      response.writeHead(served.status, {
        "content-type": "application/json",
        ...served.headers,
      });
      response.end(served.body);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  serveKeys(path: string, keys: () => JWK[]): string {
    this.routes.set(path, () => ({ status: 200, body: JSON.stringify({ keys: keys() }) }));
    return `${this.url}${path}`;
  }

  stop(): Promise<void> {
    this.#server?.closeAllConnections();
    return new Promise((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

type SigningKey = { kid: string; alg: string; privateKey: CryptoKey; jwk: JWK };

async function signingKey(alg: "RS256" | "ES256", kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, jwk };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A token as an identity provider issues it: iat now, expiring in 10 minutes unless told. */
async function issue(
  key: SigningKey | Uint8Array,
  claims: JWTPayload,
  header: { alg?: string; kid?: string } = {},
): Promise<string> {
  const isSecret = key instanceof Uint8Array;
  const alg = header.alg ?? (isSecret ? "HS256" : key.alg);
  const kid = header.kid ?? (isSecret ? undefined : key.kid);
  return new SignJWT({ iat: nowSeconds(), exp: nowSeconds() + 600, ...claims })
    .setProtectedHeader({ alg, ...(kid !== undefined ? { kid } : {}) })
    .sign(isSecret ? key : key.privateKey);
}

/** A compact JWS built by hand: any header, any claims, an HMAC under any key bytes. */
function handMade(header: Json, claims: Json, hmacKey?: Uint8Array | string): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode(header)}.${encode(claims)}`;
  if (hmacKey === undefined) return `${input}.`;
  return `${input}.${createHmac("sha256", hmacKey).update(input).digest("base64url")}`;
}

function decodeClaims(token: string): Json {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Json;
}

function anonymousToken(orgId: string, claims: Json = {}): string {
  const audience = `https://${orgId}.anonymous.auth.statebacked.dev`;
  const now = nowSeconds();
  return handMade(
    { alg: "HS256", typ: "JWT" },
    { aud: audience, iss: audience, iat: now, exp: now + 86400, sid: "s-1", did: "d-1", ...claims },
    orgId,
  );
}

// ---- the server ------------------------------------------------------------------------------

let api: ApiServer;
let idp: LocalIdp;
let rsKey: SigningKey;
let esKey: SigningKey;
let rsJwksUrl: string;
let esJwksUrl: string;
let devExchange: TokenExchange;
let admin: StateBackedClient;
let n = 0;
const fresh = (prefix: string) => `${prefix}-${++n}`;

function clientWith(config: ConstructorParameters<typeof StateBackedClient>[0]) {
  return officialClient(api.url, config);
}

/** POST /tokens, form-encoded like the official client; answers status and parsed body. */
async function exchange(
  subjectToken: string,
  service = SERVICE,
  orgId = api.orgId,
  extra: Record<string, string> = {},
): Promise<ApiResponse> {
  return postForm({
    grant_type: GRANT,
    audience: `https://tokens.statebacked.dev/${orgId}/${service}`,
    requested_token_type: ACCESS_TOKEN,
    subject_token: subjectToken,
    ...extra,
  });
}

async function postForm(
  form: Record<string, string> | string,
  contentType = "application/x-www-form-urlencoded",
): Promise<ApiResponse> {
  const response = await fetch(`${api.url}/tokens`, {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof form === "string" ? form : new URLSearchParams(form).toString(),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** The reply is an OAuth error: status, `error`, our `code`, and a description. */
/** Refused subject tokens and services are 403s (api-contract §2.3); malformed requests 400s. */
const REFUSAL_STATUS: Record<string, number> = { invalid_grant: 403, invalid_target: 403 };

function assertRefused(
  reply: ApiResponse,
  error: string,
  code: string,
  status = REFUSAL_STATUS[error] ?? 400,
): void {
  const where = JSON.stringify(reply);
  assert.equal(reply.status, status, where);
  assert.equal(reply.body?.error, error, where);
  assert.equal(reply.body?.code, code, where);
  assert.equal(typeof reply.body?.error_description, "string", where);
  assert.ok(reply.body.error_description.length > 10, where);
}

async function ok(reply: Promise<ApiResponse>): Promise<Json> {
  const answered = await reply;
  assert.ok(answered.status === 200 || answered.status === 204, JSON.stringify(answered));
  return answered.body as Json;
}

async function upsertIdp(body: Json): Promise<ApiResponse> {
  return api.admin("POST", "/idps", body);
}

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

before(async () => {
  idp = new LocalIdp();
  await idp.start();
  rsKey = await signingKey("RS256", "rs-1");
  esKey = await signingKey("ES256", "es-1");
  rsJwksUrl = idp.serveKeys("/rs/jwks.json", () => [rsKey.jwk]);
  esJwksUrl = idp.serveKeys("/es/jwks.json", () => [esKey.jwk]);

  api = await startApiServer();
  const { services } = api.server;
  // The development option: JWKS over http on loopback (the local identity provider).
  devExchange = new TokenExchange(
    { store: services.store, clock: services.clock, logger: services.logger },
    { allowLoopbackJwks: true, jwks: { cooldownMs: COOLDOWN_MS } },
  );
  services.tokenExchange = devExchange;

  admin = adminClient(api);
  await admin.machines.create(MACHINE);
  await admin.machineVersions.create(MACHINE, { code: NOTES, clientInfo: "1", makeCurrent: true });

  // The identity provider's claims → { sub, email, roles, provider } → the token's act.
  const idpMapping = {
    "sub.$": "$.sub",
    "email.$": "email",
    "roles.$": "$.app_metadata.roles",
    provider: "test-idp",
  };
  await ok(
    upsertIdp({
      aud: IDP_AUDIENCE,
      iss: IDP_ISSUER,
      algs: ["RS256", "ES256"],
      jwksUrl: rsJwksUrl,
      mapping: idpMapping,
    }),
  );
  // The ES256 keys live at another URL: a provider of their own, matched by audience alone.
  await ok(
    upsertIdp({ aud: "notes-es", algs: ["ES256"], jwksUrl: esJwksUrl, mapping: idpMapping }),
  );
  await ok(
    upsertIdp({
      iss: HS_ISSUER,
      algs: ["HS256"],
      key: HS_SECRET.toString("base64url"),
      mapping: idpMapping,
    }),
  );
  const key = await admin.keys.create({ name: "notes", use: "production" });
  await admin.tokenProviders.upsert({
    service: SERVICE,
    keyId: key.id,
    mapping: {
      "sub.$": "$.sub",
      "role.$": "$.roles[0]",
      "via.$": "$.provider",
      profile: { "email.$": "$.email" },
    },
  });
});

after(async () => {
  await api?.dispose();
  await idp?.stop();
});

const claimsOf = (sub: string, roles = ["editor"]): JWTPayload => ({
  aud: IDP_AUDIENCE,
  iss: IDP_ISSUER,
  sub,
  email: `${sub}@example.test`,
  app_metadata: { roles },
  unrelated: "dropped by the mapping",
});

describe("token exchange with the official client", () => {
  test("RS256 via JWKS: create, send, subscribe, with the mapped claims seen by allowWrite", async () => {
    const alice = clientWith({
      identityProviderToken: () => issue(rsKey, claimsOf("alice")),
      orgId: api.orgId,
      tokenProviderService: SERVICE,
    });
    const created = await alice.machineInstances.create(MACHINE, { slug: "alice" });
    assert.equal(created.state, "open");
    assert.deepEqual(created.publicContext, { notes: [] });

    const updates: unknown[] = [];
    const failures: unknown[] = [];
    const unsubscribe = alice.machineInstances.subscribe(
      MACHINE,
      "alice",
      (update) => updates.push(update.publicContext),
      (err) => failures.push(err),
    );
    try {
      await waitFor(() => updates.length > 0, "the first update");
      const sent = await alice.machineInstances.sendEvent(MACHINE, "alice", {
        event: { type: "add", text: "hello" },
      });
      assert.deepEqual(sent.publicContext, { notes: ["hello"] });
      await waitFor(
        () => updates.some((u) => JSON.stringify(u) === JSON.stringify({ notes: ["hello"] })),
        "the update after the event",
      );
      assert.deepEqual(failures, []);
    } finally {
      unsubscribe();
    }
    // Another user's instance: allowWrite refuses (sub is not the instance name).
    await assert.rejects(
      alice.machineInstances.create(MACHINE, { slug: "bob" }),
      errors.RejectedByMachineAuthorizerError,
    );
    // A user without the editor role: the mapped role decides.
    const viewer = clientWith({
      identityProviderToken: () => issue(rsKey, claimsOf("victor", ["viewer"])),
      orgId: api.orgId,
      tokenProviderService: SERVICE,
    });
    await assert.rejects(
      viewer.machineInstances.create(MACHINE, { slug: "victor" }),
      errors.RejectedByMachineAuthorizerError,
    );
  });

  test("the issued token: the key's kid, the mapped act, 1 h, readable with atob", async () => {
    const reply = await exchange(
      await issue(rsKey, {
        ...claimsOf("zoë"),
        email: "zoë+>?~@exämple.test 🙂",
        exp: nowSeconds() + 7200,
      }),
    );
    assert.equal(reply.status, 200, JSON.stringify(reply));
    assert.equal(reply.body.issued_token_type, ACCESS_TOKEN);
    assert.equal(reply.body.token_type, "Bearer");
    const token = reply.body.access_token as string;
    const [header, payload] = token.split(".");
    // The official client reads exp with atob, which refuses base64url's - and _.
    assert.doesNotMatch(payload!, /[-_]/);
    const claims = JSON.parse(atob(payload!)) as Json;
    // atob gives the bytes as latin1; the JSON text is ASCII, so it parses all the same.
    assert.deepEqual(claims.act, {
      sub: "zoë",
      role: "editor",
      via: "test-idp",
      profile: { email: "zoë+>?~@exämple.test 🙂" },
    });
    assert.equal(claims.aud, "https://api.statebacked.dev/");
    assert.equal((claims.exp as number) - (claims.iat as number), 3600);
    assert.equal(reply.body.expires_in, 3600);
    const keys = (await admin.keys.list()).keys;
    const { kid } = JSON.parse(Buffer.from(header!, "base64url").toString()) as { kid: string };
    const signer = keys.find((key) => key.id === kid);
    assert.ok(signer, "signed with an org key");
    assert.deepEqual(signer.name, "notes");
    // Its scopes are the key's (production): no machines.write.
    const made = await fetch(`${api.url}/machines`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ slug: "nope" }),
    });
    assert.equal(made.status, 403);
    assert.equal(((await made.json()) as Json).code, "missing-scope");
  });

  test("ES256 via JWKS, matched by audience alone", async () => {
    const carol = clientWith({
      identityProviderToken: () =>
        issue(esKey, { ...claimsOf("carol"), aud: "notes-es", iss: "https://anyone/" }),
      orgId: api.orgId,
      tokenProviderService: SERVICE,
    });
    const created = await carol.machineInstances.create(MACHINE, { slug: "carol" });
    assert.equal(created.state, "open");
    const sent = await carol.machineInstances.sendEvent(MACHINE, "carol", {
      event: { type: "add", text: "es" },
    });
    assert.deepEqual(sent.publicContext, { notes: ["es"] });
  });

  test("HS256 with a shared secret, matched by issuer alone", async () => {
    const dave = clientWith({
      identityProviderToken: issueSync(HS_SECRET, { ...claimsOf("dave"), iss: HS_ISSUER }),
      orgId: api.orgId,
      tokenProviderService: SERVICE,
    });
    const created = await dave.machineInstances.create(MACHINE, { slug: "dave" });
    assert.equal(created.state, "open");
    assert.equal((await dave.machineInstances.get(MACHINE, "dave")).state, "open");
  });

  test("token answers, granted or refused, may be kept by no cache (RFC 6749 §5.1)", async () => {
    const form = (subject: string) => ({
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: GRANT,
        audience: `https://tokens.statebacked.dev/${api.orgId}/${SERVICE}`,
        requested_token_type: ACCESS_TOKEN,
        subject_token: subject,
      }).toString(),
    });
    const granted = await fetch(`${api.url}/tokens`, form(await issue(rsKey, claimsOf("erin"))));
    const refused = await fetch(`${api.url}/tokens`, form("not.a.token"));
    assert.deepEqual([granted.status, refused.status], [200, 403]);
    for (const response of [granted, refused]) {
      assert.equal(response.headers.get("cache-control"), "no-store");
      assert.equal(response.headers.get("pragma"), "no-cache");
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
    }
    // Other answers are not marked.
    const other = await fetch(`${api.url}/openapi.json`);
    assert.equal(other.headers.get("cache-control"), null);
  });

  test("anonymous sessions of the bootstrap org: create, send, subscribe", async () => {
    const sid = fresh("session");
    const anonymous = clientWith({
      anonymous: { orgId: api.orgId, getSessionId: () => sid, getDeviceId: () => "device-9" },
    });
    const created = await anonymous.machineInstances.create(MACHINE, { slug: sid });
    assert.equal(created.state, "open");
    const updates: unknown[] = [];
    const unsubscribe = anonymous.machineInstances.subscribe(MACHINE, sid, (update) =>
      updates.push(update.publicContext),
    );
    try {
      await waitFor(() => updates.length > 0, "the first update");
      await anonymous.machineInstances.sendEvent(MACHINE, sid, {
        event: { type: "add", text: "anon" },
      });
      await waitFor(
        () => updates.some((u) => JSON.stringify(u) === JSON.stringify({ notes: ["anon"] })),
        "the update after the event",
      );
    } finally {
      unsubscribe();
    }
    // Only the session's own instance.
    await assert.rejects(
      anonymous.machineInstances.create(MACHINE, { slug: fresh("someone-else") }),
      errors.RejectedByMachineAuthorizerError,
    );
  });

  test("an anonymous token yields exactly { sid, did, auth: anonymous }, extra claims dropped", async () => {
    const reply = await exchange(
      anonymousToken(api.orgId, { sub: "admin", auth: "password", role: "editor" }),
      "anonymous-statebacked-dev",
    );
    assert.equal(reply.status, 200, JSON.stringify(reply));
    assert.deepEqual(decodeClaims(reply.body.access_token as string).act, {
      sid: "s-1",
      did: "d-1",
      auth: "anonymous",
    });
    // The key it is signed with holds the production scopes.
    const { kid } = JSON.parse(
      Buffer.from((reply.body.access_token as string).split(".")[0]!, "base64url").toString(),
    ) as { kid: string };
    const key = (await admin.keys.list()).keys.find((candidate) => candidate.id === kid);
    assert.deepEqual([...(key?.scopes ?? [])].sort(), [
      "events.write",
      "indexes.read",
      "instances.write",
      "state.read",
    ]);
  });

  test("an anonymous token of org A cannot be exchanged in org B, nor in an org without anonymous access", async () => {
    const other = await api.otherOrg(["tokens.admin"]);
    // Org B has anonymous access of its own (the default), keyed by its own id.
    assert.equal(
      (await exchange(anonymousToken(other.orgId), "anonymous-statebacked-dev", other.orgId))
        .status,
      200,
    );
    assertRefused(
      await exchange(anonymousToken(api.orgId), "anonymous-statebacked-dev", other.orgId),
      "invalid_grant",
      "identity-provider-not-found",
    );
    // Org A's token signed as if B's audience: still keyed by A's id, so the signature fails.
    const forged = handMade(
      { alg: "HS256", typ: "JWT" },
      {
        aud: `https://${other.orgId}.anonymous.auth.statebacked.dev`,
        iss: `https://${other.orgId}.anonymous.auth.statebacked.dev`,
        exp: nowSeconds() + 60,
        sid: "x",
        did: "x",
      },
      api.orgId,
    );
    assertRefused(
      await exchange(forged, "anonymous-statebacked-dev", other.orgId),
      "invalid_grant",
      "token-signature-invalid",
    );

    const closed = await api.admin("POST", "/orgs", {
      name: "closed",
      allowAnonymousAccess: false,
    });
    assert.equal(closed.status, 200);
    const closedId = closed.body.id as string;
    assertRefused(
      await exchange(anonymousToken(closedId), "anonymous-statebacked-dev", closedId),
      "invalid_target",
      "token-provider-not-found",
    );
    // The official client sees the refusal when it fetches its token.
    const client = clientWith({ anonymous: { orgId: closedId } });
    await assert.rejects(client.machineInstances.get(MACHINE, "x"), (err: unknown) => {
      assert.ok(err instanceof errors.UnauthorizedError, String(err));
      assert.equal(err.code, "token-provider-not-found");
      return true;
    });
  });
});

/** A token string made now (the HS256 case hands the client a string, not a function). */
function issueSync(secret: Uint8Array, claims: JWTPayload): string {
  return handMade(
    { alg: "HS256", typ: "JWT" },
    { iat: nowSeconds(), exp: nowSeconds() + 600, ...claims },
    secret,
  );
}

describe("refused subject tokens", () => {
  test("expired, within the leeway, not yet valid, without exp", async () => {
    const now = nowSeconds();
    assertRefused(
      await exchange(await issue(rsKey, { ...claimsOf("u"), exp: now - 120 })),
      "invalid_grant",
      "token-expired",
    );
    assert.equal(
      (await exchange(await issue(rsKey, { ...claimsOf("u"), exp: now - 5 }))).status,
      200,
      "5 s past exp is within the leeway",
    );
    assertRefused(
      await exchange(await issue(rsKey, { ...claimsOf("u"), nbf: now + 600 })),
      "invalid_grant",
      "token-not-yet-valid",
    );
    const noExp = handMade(
      { alg: "HS256" },
      { ...claimsOf("u"), iss: HS_ISSUER, aud: undefined },
      HS_SECRET,
    );
    assertRefused(await exchange(noExp), "invalid_grant", "token-expiry-missing");
  });

  test("a wrong signature, a tampered payload, an unknown kid", async () => {
    const impostor = await signingKey("RS256", rsKey.kid);
    assertRefused(
      await exchange(await issue(impostor, claimsOf("u"))),
      "invalid_grant",
      "token-signature-invalid",
    );
    const [header, , signature] = (await issue(rsKey, claimsOf("u"))).split(".");
    const tampered = Buffer.from(JSON.stringify({ ...claimsOf("admin"), exp: nowSeconds() + 60 }));
    assertRefused(
      await exchange(`${header}.${tampered.toString("base64url")}.${signature}`),
      "invalid_grant",
      "token-signature-invalid",
    );
    const wrongSecret = issueSync(Buffer.from("not the shared secret at all!"), {
      ...claimsOf("u"),
      iss: HS_ISSUER,
    });
    assertRefused(await exchange(wrongSecret), "invalid_grant", "token-signature-invalid");
    const stranger = await signingKey("RS256", "rs-unknown");
    assertRefused(
      await exchange(await issue(stranger, claimsOf("u"))),
      "invalid_grant",
      "token-unknown-key",
    );
  });

  test("an algorithm the identity provider does not allow, and alg none", async () => {
    // PS256 with the provider's own RSA key: a valid signature, but not an allowed algorithm.
    const rsa = createPrivateKey({
      key: (await exportJWK(rsKey.privateKey)) as JsonWebKey,
      format: "jwk",
    });
    const ps = await new SignJWT({ ...claimsOf("u"), exp: nowSeconds() + 60 })
      .setProtectedHeader({ alg: "PS256", kid: rsKey.kid })
      .sign(rsa);
    assertRefused(await exchange(ps), "invalid_grant", "token-algorithm-not-allowed");
    const hs512 = handMade({ alg: "HS512" }, { ...claimsOf("u"), iss: HS_ISSUER });
    assertRefused(await exchange(hs512), "invalid_grant", "token-algorithm-not-allowed");
    const none = handMade({ alg: "none" }, { ...claimsOf("u"), exp: nowSeconds() + 60 });
    const reply = await exchange(none);
    assert.equal(reply.status, 403, JSON.stringify(reply));
    assert.equal(reply.body.error, "invalid_grant");
  });

  test("HS256 signed with the RS256 provider's public key (algorithm confusion)", async () => {
    for (const secret of [publicPem(rsKey.jwk), JSON.stringify(rsKey.jwk), rsKey.jwk.n!]) {
      const confused = handMade(
        { alg: "HS256", kid: rsKey.kid },
        { ...claimsOf("admin"), exp: nowSeconds() + 60 },
        secret,
      );
      assertRefused(await exchange(confused), "invalid_grant", "token-algorithm-not-allowed");
    }
    // Nor can a provider be configured so: a JWKS verifies asymmetric algorithms only.
    const mixed = await upsertIdp({
      iss: "https://mixed/",
      algs: ["RS256", "HS256"],
      jwksUrl: rsJwksUrl,
      mapping: {},
    });
    assert.equal(mixed.status, 400, JSON.stringify(mixed));
    assert.equal(mixed.body.parameter, "algs");
  });

  test("an unknown issuer or audience, an unknown service or org, a malformed audience", async () => {
    assertRefused(
      await exchange(await issue(rsKey, { ...claimsOf("u"), iss: "https://elsewhere/" })),
      "invalid_grant",
      "identity-provider-not-found",
    );
    assertRefused(
      await exchange(await issue(rsKey, { ...claimsOf("u"), aud: "some-other-api" })),
      "invalid_grant",
      "identity-provider-not-found",
    );
    const token = await issue(rsKey, claimsOf("u"));
    assertRefused(
      await exchange(token, "no-such-service"),
      "invalid_target",
      "token-provider-not-found",
    );
    assertRefused(
      await exchange(token, SERVICE, "org_noSuchOrg000000000000"),
      "invalid_target",
      "token-provider-not-found",
    );
    for (const audience of ["https://tokens.statebacked.dev/", "not a url", `${api.orgId}`]) {
      assertRefused(
        await postForm({ grant_type: GRANT, audience, subject_token: token }),
        "invalid_target",
        "invalid-audience",
      );
    }
    // The host is ignored: only the last two path segments count.
    assert.equal(
      (
        await postForm({
          grant_type: GRANT,
          audience: `http://any.host/x/${api.orgId}/${SERVICE}`,
          subject_token: token,
        })
      ).status,
      200,
    );
  });

  test("malformed requests: grant type, parameters, content type", async () => {
    const token = await issue(rsKey, claimsOf("u"));
    const audience = `https://tokens.statebacked.dev/${api.orgId}/${SERVICE}`;
    assertRefused(
      await postForm({ grant_type: "client_credentials", audience, subject_token: token }),
      "unsupported_grant_type",
      "unsupported-grant-type",
    );
    assertRefused(
      await postForm({ grant_type: GRANT, audience }),
      "invalid_request",
      "invalid-parameter",
    );
    assertRefused(
      await postForm({ audience, subject_token: token }),
      "invalid_request",
      "invalid-parameter",
    );
    assertRefused(
      await postForm(
        `grant_type=${encodeURIComponent(GRANT)}&audience=${audience}&subject_token=${token}&subject_token=${token}`,
      ),
      "invalid_request",
      "invalid-parameter",
    );
    assertRefused(
      await exchange(token, SERVICE, api.orgId, { requested_token_type: "urn:x:refresh_token" }),
      "invalid_request",
      "invalid-parameter",
    );
    assertRefused(
      await postForm(
        JSON.stringify({ grant_type: GRANT, audience, subject_token: token }),
        "application/json",
      ),
      "invalid_request",
      "invalid-parameter",
    );
    assertRefused(await exchange("not-a-jwt"), "invalid_grant", "token-malformed");
    assertRefused(await exchange("a.b.c"), "invalid_grant", "token-malformed");
  });

  test("a deleted identity provider, token provider or key stops exchanges at once", async () => {
    const iss = `https://${fresh("idp")}.example/`;
    const secret = Buffer.from("a secret for the deletion test");
    await ok(
      upsertIdp({
        iss,
        algs: ["HS256"],
        key: secret.toString("base64url"),
        mapping: { "sub.$": "$.sub" },
      }),
    );
    const service = fresh("svc");
    const key = await admin.keys.create({ name: service, use: "production" });
    await admin.tokenProviders.upsert({ service, keyId: key.id, mapping: { "sub.$": "$.sub" } });
    const token = issueSync(secret, { iss, sub: "u" });
    const first = await exchange(token, service);
    assert.equal(first.status, 200, JSON.stringify(first));

    await ok(api.admin("DELETE", "/idps", { iss }));
    assertRefused(await exchange(token, service), "invalid_grant", "identity-provider-not-found");
    assert.equal((await api.admin("DELETE", "/idps", { iss })).status, 404);
    await ok(upsertIdp({ iss, algs: ["HS256"], key: secret.toString("base64url"), mapping: {} }));
    assert.equal((await exchange(token, service)).status, 200, "back after the upsert");

    await admin.tokenProviders.delete(service);
    assertRefused(await exchange(token, service), "invalid_target", "token-provider-not-found");
    await assert.rejects(admin.tokenProviders.delete(service), errors.NotFoundError);

    // The provider's key deleted: no more tokens, and the ones it signed stop verifying.
    await admin.tokenProviders.upsert({ service, keyId: key.id, mapping: { "sub.$": "$.sub" } });
    const issued = (await exchange(token, service)).body.access_token as string;
    await admin.keys.delete(key.id);
    assertRefused(await exchange(token, service), "invalid_target", "token-provider-key-missing");
    const read = await fetch(`${api.url}/machines/${MACHINE}/i/u`, {
      headers: { authorization: `Bearer ${issued}` },
    });
    assert.equal(read.status, 403);
  });
});

describe("JWKS fetching", () => {
  test("a rotated key is picked up, refetching at most once per cooldown", async () => {
    let keys = [rsKey.jwk];
    const url = idp.serveKeys("/rotating/jwks.json", () => keys);
    const aud = fresh("rotating");
    await ok(upsertIdp({ aud, algs: ["RS256"], jwksUrl: url, mapping: { "sub.$": "$.sub" } }));
    const token = (key: SigningKey) => issue(key, { aud, sub: "u" });
    const hits = () => idp.hits.get("/rotating/jwks.json") ?? 0;

    assert.equal((await exchange(await token(rsKey))).status, 200);
    assert.equal(hits(), 1);
    assert.equal((await exchange(await token(rsKey))).status, 200);
    assert.equal(hits(), 1, "served from the cache");

    const next = await signingKey("RS256", "rs-2");
    keys = [rsKey.jwk, next.jwk];
    // Within the cooldown of the first fetch: unknown kids do not make it fetch again.
    for (let i = 0; i < 5; i++) {
      assertRefused(await exchange(await token(next)), "invalid_grant", "token-unknown-key");
    }
    const stranger = await signingKey("RS256", "rs-never");
    assertRefused(await exchange(await token(stranger)), "invalid_grant", "token-unknown-key");
    assert.equal(hits(), 1, "no refetch within the cooldown");

    await new Promise((resolve) => setTimeout(resolve, COOLDOWN_MS + 100));
    assert.equal((await exchange(await token(next))).status, 200, "the new key after a refetch");
    assert.equal(hits(), 2);
    // Made-up kids now cost at most one fetch per cooldown.
    await Promise.all(
      Array.from({ length: 10 }, async () =>
        assertRefused(await exchange(await token(stranger)), "invalid_grant", "token-unknown-key"),
      ),
    );
    assert.equal(hits(), 2);
  });

  test("in development mode, a JWKS on loopback may be named by host name", async () => {
    const aud = fresh("localhost");
    const port = new URL(idp.url).port;
    const jwksUrl = `http://localhost:${port}/rs/jwks.json`;
    await ok(upsertIdp({ aud, algs: ["RS256"], jwksUrl, mapping: { "sub.$": "$.sub" } }));
    const reply = await exchange(await issue(rsKey, { aud, sub: "u" }));
    assert.equal(reply.status, 200, JSON.stringify(reply));
  });

  test("an unreachable, redirecting, oversized or malformed JWKS: 503 temporarily_unavailable", async () => {
    const cases: Array<[string, Served | undefined]> = [
      ["/closed", undefined],
      ["/redirect", { status: 302, body: "", headers: { location: rsJwksUrl } }],
      ["/huge", { status: 200, body: JSON.stringify({ keys: [{ x: "y".repeat(300_000) }] }) }],
      ["/not-json", { status: 200, body: "<html>" }],
      ["/no-keys", { status: 200, body: JSON.stringify({ keys: "nope" }) }],
      ["/error", { status: 500, body: "{}" }],
    ];
    for (const [path, served] of cases) {
      if (served) idp.routes.set(path, () => served);
      // A closed port on loopback: nothing listens there.
      const url = served ? `${idp.url}${path}` : "http://127.0.0.1:1/jwks.json";
      const aud = fresh("broken");
      await ok(upsertIdp({ aud, algs: ["RS256"], jwksUrl: url, mapping: {} }));
      const reply = await exchange(await issue(rsKey, { aud, sub: "u" }));
      assertRefused(reply, "temporarily_unavailable", "jwks-unavailable", 503);
    }
  });

  test("with the default policy, private and loopback JWKS URLs are refused, when saved and when fetched", async () => {
    const { services } = api.server;
    const strict = new TokenExchange({
      store: services.store,
      clock: services.clock,
      logger: services.logger,
    });
    // Saved while development mode allowed them, fetched now that it does not: by IP, and by a
    // name that resolves to loopback (refused by the lookup, before any connection).
    const aud = fresh("was-allowed");
    await ok(upsertIdp({ aud, algs: ["RS256"], jwksUrl: rsJwksUrl, mapping: {} }));
    const byName = fresh("by-name");
    const port = new URL(idp.url).port;
    await ok(
      upsertIdp({
        aud: byName,
        algs: ["RS256"],
        jwksUrl: `https://localhost:${port}/rs/jwks.json`,
        mapping: {},
      }),
    );
    services.tokenExchange = strict;
    try {
      for (const jwksUrl of [
        rsJwksUrl, // http, loopback
        "https://127.0.0.1/jwks.json",
        "https://127.1.2.3:8443/jwks.json",
        "https://localhost/jwks.json", // a name that resolves to loopback
        "https://10.0.0.7/jwks.json",
        "https://172.20.1.1/jwks.json",
        "https://192.168.1.1/jwks.json",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/jwks.json",
        "https://0.0.0.0/jwks.json",
        "https://[::1]/jwks.json",
        "https://[fd12:3456::1]/jwks.json",
        "https://[fe80::1]/jwks.json",
        "https://[::ffff:10.0.0.1]/jwks.json",
        "https://[::ffff:7f00:1]/jwks.json",
        "https://0x7f.1/jwks.json",
        "https://2130706433/jwks.json",
        "http://example.com/jwks.json",
        "ftp://example.com/jwks.json",
        "https://user:pass@example.com/jwks.json",
        "jwks.json",
      ]) {
        const reply = await upsertIdp({ aud: fresh("x"), algs: ["RS256"], jwksUrl, mapping: {} });
        assert.equal(reply.status, 400, `${jwksUrl}: ${JSON.stringify(reply)}`);
        assert.equal(reply.body.parameter, "jwksUrl", jwksUrl);
      }
      // A public address is fine to save (fetching it is another matter in a test sandbox).
      const saved = await upsertIdp({
        aud: fresh("public"),
        algs: ["RS256"],
        jwksUrl: "https://93.184.215.14/.well-known/jwks.json",
        mapping: {},
      });
      assert.equal(saved.status, 204, JSON.stringify(saved));
      const before = idp.hits.get("/rs/jwks.json");
      assertRefused(
        await exchange(await issue(rsKey, { aud, sub: "u" })),
        "invalid_grant",
        "jwks-address-refused",
      );
      assertRefused(
        await exchange(await issue(rsKey, { aud: byName, sub: "u" })),
        "invalid_grant",
        "jwks-address-refused",
      );
      assert.equal(idp.hits.get("/rs/jwks.json"), before, "nothing was fetched");
    } finally {
      services.tokenExchange = devExchange;
    }
    // Development mode allows loopback only: plain http elsewhere is still refused.
    const lan = await upsertIdp({
      aud: fresh("x"),
      algs: ["RS256"],
      jwksUrl: "http://10.0.0.7/jwks.json",
      mapping: {},
    });
    assert.equal(lan.status, 400, JSON.stringify(lan));
  });
});

describe("identity and token provider configuration", () => {
  test("upserts are validated: aud/iss, key or jwksUrl, algorithms, key length", async () => {
    const key = HS_SECRET.toString("base64url");
    const cases: Array<[Json, string]> = [
      [{ algs: ["HS256"], key, mapping: {} }, "aud"],
      [{ iss: "i", algs: ["HS256"], mapping: {} }, "key"],
      [{ iss: "i", algs: ["HS256"], key, jwksUrl: rsJwksUrl, mapping: {} }, "key"],
      [{ iss: "i", algs: ["RS256"], key, mapping: {} }, "algs"],
      [{ iss: "i", algs: ["HS256"], jwksUrl: rsJwksUrl, mapping: {} }, "algs"],
      [{ iss: "i", algs: ["none"], key, mapping: {} }, "algs.0"],
      [{ iss: "i", algs: [], key, mapping: {} }, "algs"],
      [{ iss: "i", algs: ["HS256"], key: "c2hvcnQ", mapping: {} }, "key"],
      [{ iss: "i", algs: ["HS256"], key: "not base64!", mapping: {} }, "key"],
      [{ iss: "", algs: ["HS256"], key, mapping: {} }, "iss"],
      [{ iss: "i", algs: ["HS256"], key }, "mapping"],
    ];
    for (const [body, parameter] of cases) {
      const reply = await upsertIdp(body);
      assert.equal(reply.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(reply)}`);
      assert.equal(reply.body.code, "invalid-parameter");
      assert.equal(reply.body.parameter, parameter, JSON.stringify(reply));
    }
  });

  test("a mapping that does not parse is refused when saved (400, parameter mapping)", async () => {
    const bad: unknown[] = [
      "sub",
      [],
      { "sub.$": 42 },
      { "sub.$": "" },
      { "sub.$": "$.a[" },
      { "sub.$": "$.a]" },
      { "sub.$": "$['unterminated]" },
      { "sub.$": "$[?(@.admin)]" },
      { "sub.$": "$..[(@.length-1)]" },
      { ".$": "$.sub" },
      { "sub.$": "$.sub", sub: "literal" },
      { nested: { "deep.$": "$.a[[0]]" } },
      { "__proto__.$": "$.sub" },
    ];
    const service = fresh("svc");
    const key = await admin.keys.create({ name: service, use: "production" });
    for (const mapping of bad) {
      const idpReply = await upsertIdp({
        iss: "https://m/",
        algs: ["HS256"],
        key: HS_SECRET.toString("base64url"),
        mapping,
      });
      assert.equal(idpReply.status, 400, `${JSON.stringify(mapping)}: ${JSON.stringify(idpReply)}`);
      assert.equal(idpReply.body.parameter, "mapping");
      const tpReply = await api.admin("POST", "/token-providers", {
        service,
        keyId: key.id,
        mapping,
      });
      assert.equal(tpReply.status, 400, `${JSON.stringify(mapping)}: ${JSON.stringify(tpReply)}`);
      assert.equal(tpReply.body.parameter, "mapping");
    }
    assert.ok(!(await admin.identityProviders.list()).idps.some((p) => p.iss === "https://m/"));
    assert.ok(
      !(await admin.tokenProviders.list()).tokenProviders.some((p) => p.service === service),
    );
  });

  test("listed without secrets, upserted in place, deleted by exact aud/iss", async () => {
    const iss = `https://${fresh("list")}.example/`;
    await admin.identityProviders.upsert({
      iss,
      algs: ["HS256"],
      key: HS_SECRET.toString("base64url"),
      mapping: { "a.$": "$.a" },
    });
    await admin.identityProviders.upsert({
      iss,
      algs: ["HS384", "HS384"],
      key: HS_SECRET.toString("base64url"),
      mapping: { "b.$": "$.b" },
    });
    const listed = (await admin.identityProviders.list()).idps.filter((p) => p.iss === iss);
    assert.deepEqual(listed, [{ iss, algs: ["HS384"], mapping: { "b.$": "$.b" } }]);
    const jwks = (await admin.identityProviders.list()).idps.find((p) => p.aud === IDP_AUDIENCE);
    assert.deepEqual(jwks, {
      aud: IDP_AUDIENCE,
      iss: IDP_ISSUER,
      algs: ["RS256", "ES256"],
      jwksUrl: rsJwksUrl,
      mapping: {
        "sub.$": "$.sub",
        "email.$": "email",
        "roles.$": "$.app_metadata.roles",
        provider: "test-idp",
      },
    });
    // The bootstrap org's anonymous-session provider is an ordinary row.
    const audience = `https://${api.orgId}.anonymous.auth.statebacked.dev`;
    assert.ok(
      (await admin.identityProviders.list()).idps.some(
        (p) => p.aud === audience && p.iss === audience,
      ),
    );
    // Deleting needs the exact pair.
    await assert.rejects(admin.identityProviders.delete({ iss, aud: "x" }), errors.NotFoundError);
    await admin.identityProviders.delete({ iss });
    assert.ok(!(await admin.identityProviders.list()).idps.some((p) => p.iss === iss));
  });

  test("a token provider names a key of this org, whose scopes the caller holds", async () => {
    const other = await api.otherOrg(["tokens.admin", "org.keys.write"]);
    const reply = await api.admin("POST", "/token-providers", {
      service: fresh("svc"),
      keyId: other.key.id,
      mapping: {},
    });
    assert.equal(reply.status, 404, JSON.stringify(reply));
    // A tokens.admin key cannot make a provider mint with scopes it lacks.
    const tokensAdmin = await api.createKey(["tokens.admin"], "tokens-admin");
    const production = await admin.keys.create({ name: "prod", use: "production" });
    const response = await fetch(`${api.url}/token-providers`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${await api.tokenFor(tokensAdmin, {})}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ service: fresh("svc"), keyId: production.id, mapping: {} }),
    });
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as Json).code, "missing-scope");
  });
});

/** The RSA public key of a JWK as PEM text (what an attacker would use as the HMAC secret). */
function publicPem(jwk: JWK): string {
  const key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
  return key.export({ type: "spki", format: "pem" }) as string;
}

describe("which token providers an identity provider's tokens may be exchanged at", () => {
  /** Calls the API with a key token (no act), answering status and parsed body. */
  async function asKey(key: { id: string; key: string }, path: string, body: Json) {
    const response = await fetch(`${api.url}${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${await api.tokenFor(key, {})}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : undefined };
  }

  test("an anonymous token is refused at any service but the anonymous one", async () => {
    // A staff provider: its key can administer instances and make keys.
    const staffKey = await api.createKey(["instances.admin", "org.keys.write"], "staff");
    const staff = fresh("staff");
    await ok(
      api.admin("POST", "/token-providers", {
        service: staff,
        keyId: staffKey.id,
        mapping: { "sub.$": "$.sub", role: "staff" },
      }),
    );
    assertRefused(
      await exchange(anonymousToken(api.orgId, { sub: "ceo" }), staff),
      "invalid_target",
      "identity-provider-not-allowed",
    );
    // The same holds for a provider an admin configured with the org id as its secret under
    // another issuer: whoever knows the org id can sign its tokens.
    const issuer = `https://${fresh("public")}.example.test/`;
    await ok(
      upsertIdp({
        iss: issuer,
        algs: ["HS256"],
        key: Buffer.from(api.orgId).toString("base64url"),
        mapping: { "sub.$": "$.sub" },
      }),
    );
    const signed = handMade(
      { alg: "HS256" },
      { iss: issuer, sub: "ceo", exp: nowSeconds() + 60 },
      api.orgId,
    );
    assertRefused(await exchange(signed, staff), "invalid_target", "identity-provider-not-allowed");
    const anonymous = await exchange(signed, "anonymous-statebacked-dev");
    assert.equal(anonymous.status, 200, JSON.stringify(anonymous));
    assert.deepEqual(decodeClaims(anonymous.body.access_token as string).act, {
      auth: "anonymous",
    });
  });

  test("anonymous tokens carry only sid, did and auth, whatever an admin maps", async () => {
    const { orgId } = await api.otherOrg(["state.read"]);
    const audience = `https://${orgId}.anonymous.auth.statebacked.dev`;
    const inOrg = (method: string, path: string, body: Json) =>
      fetch(`${api.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${api.adminToken}`,
          "content-type": "application/json",
          "x-statebacked-org-id": orgId,
        },
        body: JSON.stringify(body),
      });
    // Both of the org's anonymous rows remapped to pass the token's own claims through.
    const idpSaved = await inOrg("POST", "/idps", {
      aud: audience,
      iss: audience,
      algs: ["HS256"],
      key: Buffer.from(orgId).toString("base64url"),
      mapping: { "sub.$": "$.sub", "sid.$": "$.sid", "did.$": "$.did", "role.$": "$.role" },
    });
    assert.equal(idpSaved.status, 204);
    const listed = (await (
      await fetch(`${api.url}/token-providers`, {
        headers: { authorization: `Bearer ${api.adminToken}`, "x-statebacked-org-id": orgId },
      })
    ).json()) as { tokenProviders: Array<{ service: string; keyId: string }> };
    const provider = listed.tokenProviders.find((p) => p.service === "anonymous-statebacked-dev");
    const providerSaved = await inOrg("POST", "/token-providers", {
      service: "anonymous-statebacked-dev",
      keyId: provider!.keyId,
      mapping: { "sub.$": "$.sub", "role.$": "$.role", "sid.$": "$.sid", auth: "password" },
    });
    assert.equal(providerSaved.status, 204);
    const reply = await exchange(
      anonymousToken(orgId, { sub: "ceo", role: "staff" }),
      "anonymous-statebacked-dev",
      orgId,
    );
    assert.equal(reply.status, 200, JSON.stringify(reply));
    // did is not mapped any more, so it is missing; sub, role and auth "password" never appear.
    assert.deepEqual(decodeClaims(reply.body.access_token as string).act, {
      sid: "s-1",
      auth: "anonymous",
    });
  });

  test("an identity provider's tokens mint at most the scopes of whoever configured it", async () => {
    const tokensAdmin = await api.createKey(["tokens.admin"], "tokens-admin");
    const secret = Buffer.from(`${fresh("mallory")} secret of sixteen bytes or more`);
    const issuer = `https://${fresh("mallory")}.example.test/`;
    const saved = await asKey(tokensAdmin, "/idps", {
      iss: issuer,
      algs: ["HS256"],
      key: secret.toString("base64url"),
      mapping: { "sub.$": "$.sub", "roles.$": "$.roles", provider: "test-idp" },
    });
    assert.equal(saved.status, 204, JSON.stringify(saved));
    const asCeo = () =>
      issue(secret, { iss: issuer, sub: "ceo", roles: ["editor"], email: "ceo@example.test" });
    // SERVICE's key holds the production scopes, which a tokens.admin key does not.
    assertRefused(await exchange(await asCeo()), "invalid_target", "identity-provider-not-allowed");

    // A provider whose key holds no more than tokens.admin accepts them.
    const modest = fresh("modest");
    const modestKey = await api.createKey(["tokens.admin"], "modest");
    await ok(
      api.admin("POST", "/token-providers", {
        service: modest,
        keyId: modestKey.id,
        mapping: { "sub.$": "$.sub" },
      }),
    );
    const minted = await exchange(await asCeo(), modest);
    assert.equal(minted.status, 200, JSON.stringify(minted));
    assert.deepEqual(decodeClaims(minted.body.access_token as string).act, { sub: "ceo" });

    // Saved again by an admin (every scope), the same provider's tokens reach SERVICE; saved
    // again by the tokens.admin key, they no longer do.
    const body = {
      iss: issuer,
      algs: ["HS256"],
      key: secret.toString("base64url"),
      mapping: { "sub.$": "$.sub", "roles.$": "$.roles", provider: "test-idp" },
    };
    await ok(upsertIdp(body));
    assert.equal((await exchange(await asCeo())).status, 200);
    assert.equal((await asKey(tokensAdmin, "/idps", body)).status, 204);
    assertRefused(await exchange(await asCeo()), "invalid_target", "identity-provider-not-allowed");
  });

  test("the issued token expires no later than the subject token, in whole seconds", async () => {
    const exp = nowSeconds() + 120;
    const reply = await exchange(await issue(rsKey, { ...claimsOf("ann"), exp: exp + 0.7 }));
    assert.equal(reply.status, 200, JSON.stringify(reply));
    const claims = decodeClaims(reply.body.access_token as string);
    assert.equal(claims.exp, exp);
    assert.equal(reply.body.expires_in, exp - (claims.iat as number));
  });

  test("an identity provider saved before grantable scopes were recorded mints nothing until saved again", async () => {
    const issuer = `https://${fresh("legacy")}.example.test/`;
    const secret = Buffer.from(`${issuer} secret, sixteen bytes at least`);
    const saved = {
      iss: issuer,
      algs: ["HS256"],
      key: secret.toString("base64url"),
      mapping: { "sub.$": "$.sub", "roles.$": "$.roles", provider: "test-idp" },
    };
    // As migration 0004 leaves a row saved before it: no grantable scopes.
    await api.server.services.store.upsertIdentityProvider({
      orgId: api.orgId,
      aud: undefined,
      iss: issuer,
      algs: saved.algs,
      key: saved.key,
      jwksUrl: undefined,
      mapping: saved.mapping,
      grantableScopes: undefined,
      createdAt: Date.now(),
      updatedAt: Date.now(),
    });
    const token = () => issue(secret, { iss: issuer, sub: "old", roles: ["editor"] });
    const refused = await exchange(await token());
    assertRefused(refused, "invalid_target", "identity-provider-not-allowed");
    assert.match(refused.body.error_description as string, /save it again/);
    await ok(upsertIdp(saved));
    assert.equal((await exchange(await token())).status, 200);
  });

  test("anonymous tokens reach no scope beyond production, whatever key the service is given", async () => {
    const { orgId } = await api.otherOrg(["state.read"]);
    const headers = {
      authorization: `Bearer ${api.adminToken}`,
      "content-type": "application/json",
      "x-statebacked-org-id": orgId,
    };
    const made = await fetch(`${api.url}/keys`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "powerful", scopes: ["instances.admin", "state.read"] }),
    });
    const powerful = (await made.json()) as { id: string };
    // The org's anonymous identity provider as a row from before migration 0004 holds it.
    const audience = `https://${orgId}.anonymous.auth.statebacked.dev`;
    await api.server.services.store.upsertIdentityProvider({
      orgId,
      aud: audience,
      iss: audience,
      algs: ["HS256"],
      key: Buffer.from(orgId).toString("base64url"),
      jwksUrl: undefined,
      mapping: { "sid.$": "$.sid", "did.$": "$.did" },
      grantableScopes: undefined,
      createdAt: Date.now(),
      updatedAt: Date.now(),
    });
    const repointed = await fetch(`${api.url}/token-providers`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        service: "anonymous-statebacked-dev",
        keyId: powerful.id,
        mapping: { "sid.$": "$.sid", "did.$": "$.did", auth: "anonymous" },
      }),
    });
    assert.equal(repointed.status, 204);
    assertRefused(
      await exchange(anonymousToken(orgId), "anonymous-statebacked-dev", orgId),
      "invalid_target",
      "identity-provider-not-allowed",
    );
  });
});
