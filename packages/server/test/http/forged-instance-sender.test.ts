// `authContext.stateBackedSender` names the instance an event between instances comes from: State
// Backed sets it itself and promises it cannot be forged (behavior.md §13), so machines admit such
// events on that claim alone (the docs' child machine does). It used to pass from a key token's
// act, the act-as header and a token provider's mapping straight to allowWrite: any holder of an
// org key could pass for an instance. Now each is refused before any machine code runs, and so is
// the claim hidden under a `__proto__` key.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { setUpHs256Exchange, signSubjectToken } from "../support/hs256-exchange.js";

const MACHINE = "child";
const PARENT = { machineName: "parent-machine", machineInstanceName: "p1" };
const IDP_ISSUER = "https://login.example.test/";

/** A child that admits only events from its parent, as State Backed's docs write one. */
const CHILD_CODE =
  'import { createMachine } from "xstate"; ' +
  'export default createMachine({ initial: "a", states: { a: { on: { go: "b" } }, b: {} } }); ' +
  "const fromParent = ({ authContext }) => " +
  'authContext.stateBackedSender?.machineName === "parent-machine"; ' +
  "export const allowRead = fromParent; export const allowWrite = fromParent;";

let api: ApiServer;
let key: ApiKey;

before(async () => {
  api = await startApiServer();
  await api.admin("POST", "/machines", { slug: MACHINE });
  const { signedId, upload } = await api.uploadVersion(MACHINE, CHILD_CODE);
  assert.equal(upload.status, 204);
  const finalized = await api.admin("PUT", `/machines/${MACHINE}/v/${signedId}`, {});
  assert.equal(finalized.status, 200, JSON.stringify(finalized.body));
  key = await api.createKey(["instances.write", "state.read"]);
});
after(() => api.dispose());

async function createChild(slug: string, headers: Record<string, string>) {
  const response = await fetch(`${api.url}/machines/${MACHINE}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ slug }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

async function assertNoInstance(slug: string): Promise<void> {
  const read = await api.admin("GET", `/machines/${MACHINE}/i/${slug}/admin`);
  assert.equal(read.status, 404, `instance ${slug} was created`);
}

test("a key token whose act names an instance as sender is refused (403) and creates nothing", async () => {
  const token = await api.tokenFor(key, { sub: "u1", stateBackedSender: PARENT });
  const answer = await createChild("by-key", { authorization: `Bearer ${token}` });
  assert.equal(answer.status, 403, JSON.stringify(answer.body));
  assert.equal(answer.body.code, "token-claim-invalid");
  await assertNoInstance("by-key");
});

test("an act-as header naming an instance as sender is refused (400) and creates nothing", async () => {
  const answer = await createChild("by-act-as", {
    authorization: `Bearer ${api.adminToken}`,
    "x-statebacked-org-id": api.orgId,
    "x-statebacked-act": JSON.stringify({ stateBackedSender: PARENT }),
  });
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.parameter, "x-statebacked-act");
  await assertNoInstance("by-act-as");
});

/**
 * Sets up an identity provider (issuer `issuer`, mapping `idpMapping`) and token provider
 * `service` (mapping `providerMapping`), then exchanges a subject token carrying `claims`: the
 * exchange's answer.
 */
async function exchangeThrough(options: {
  issuer: string;
  service: string;
  idpMapping: Record<string, string>;
  providerMapping: Record<string, string>;
  claims: Record<string, unknown>;
}) {
  const { issuer, service, idpMapping, providerMapping } = options;
  const scopes = ["instances.write", "state.read"] as const;
  await setUpHs256Exchange(api, { service, scopes, idpMapping, providerMapping, issuer });
  return api.exchangeToken(service, await signSubjectToken({ ...options.claims, iss: issuer }));
}

test("a token exchange whose mapping yields a sender claim issues no token", async () => {
  const { status, body } = await exchangeThrough({
    issuer: IDP_ISSUER,
    service: "children",
    idpMapping: { "sub.$": "$.sub", "sender.$": "$.sender" },
    providerMapping: { "sub.$": "$.sub", "stateBackedSender.$": "$.sender" },
    claims: { sub: "u2", sender: PARENT },
  });
  assert.equal(status, 403, JSON.stringify(body));
  assert.equal(body.code, "token-claim-invalid");
  assert.equal(body.access_token, undefined);
});

// JSON keeps `__proto__` as a key, but an authorizer that copies its argument by assignment turns
// it into the copy's prototype, where the hidden claim reads as the real one.
const HIDDEN_SENDER = JSON.parse(
  `{"__proto__": {"stateBackedSender": ${JSON.stringify(PARENT)}}}`,
) as Record<string, unknown>;

test("a key token whose act hides the sender claim under __proto__, at any depth, is refused (403)", async () => {
  for (const [slug, act] of [
    ["hidden-top", { sub: "u1", ...HIDDEN_SENDER }],
    ["hidden-deep", { sub: "u1", profile: { nested: HIDDEN_SENDER } }],
  ] as const) {
    assert.ok(JSON.stringify(act).includes("__proto__"), "the act carries the key");
    const token = await api.tokenFor(key, act);
    const answer = await createChild(slug, { authorization: `Bearer ${token}` });
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.code, "token-claim-invalid");
    assert.match(answer.body.error ?? "", /__proto__/);
    await assertNoInstance(slug);
  }
});

test("an act-as header with a __proto__ key at any depth is refused (400)", async () => {
  const answer = await createChild("hidden-act-as", {
    authorization: `Bearer ${api.adminToken}`,
    "x-statebacked-org-id": api.orgId,
    "x-statebacked-act": JSON.stringify({ sub: "u1", profile: HIDDEN_SENDER }),
  });
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.parameter, "x-statebacked-act");
  await assertNoInstance("hidden-act-as");
});

test("a token exchange whose mapped claims hold a __proto__ key issues no token", async () => {
  const profile = { "sub.$": "$.sub", "profile.$": "$.profile" };
  const { status, body } = await exchangeThrough({
    issuer: "https://proto.example.test/",
    service: "profiles",
    idpMapping: profile,
    providerMapping: profile,
    claims: { sub: "u3", profile: HIDDEN_SENDER },
  });
  assert.equal(status, 403, JSON.stringify(body));
  assert.equal(body.code, "token-claim-invalid");
  assert.equal(body.access_token, undefined);
});

test("the same requests without the claim still reach the machine's authorizer", async () => {
  const token = await api.tokenFor(key, { sub: "u1" });
  const answer = await createChild("plain", { authorization: `Bearer ${token}` });
  assert.equal(answer.status, 403, JSON.stringify(answer.body));
  assert.equal(answer.body.code, "rejected-by-machine-authorizer");
});
