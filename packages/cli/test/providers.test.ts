// `backstate identity-providers` and `token-providers` against a real server: upserts with a
// secret and with the presets, lists, deletes, bad mappings refused with a clear message and exit
// code; then a whole token exchange: an HS256 token from the identity provider, traded at
// POST /tokens for a Backstate token that the API accepts as that end user.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SignJWT } from "jose";
import { parsed, startTestServerWithToggle, type TestServer } from "./support/cli.js";

const TIMEOUT = { timeout: 60_000 };
let server: TestServer;

before(async () => {
  server = await startTestServerWithToggle();
});
after(() => server.close());

type Idp = { aud?: string; iss?: string; algs: string[]; jwksUrl?: string; mapping: unknown };

const listIdps = async () =>
  parsed<{ idps: Idp[] }>(await server.run(["identity-providers", "list", "--json"])).idps;

test(
  "identity-providers: upsert with a secret and with the presets, list, delete",
  TIMEOUT,
  async () => {
    // New orgs have the identity provider of anonymous sessions already.
    const before = (await listIdps()).length;
    const own = parsed(
      await server.run([
        "identity-providers",
        "upsert",
        "--aud",
        "app",
        "--iss",
        "https://id.example.test/",
        "--alg",
        "HS256",
        "--alg",
        "HS512",
        "--key",
        "a shared secret of some length",
        "--mapping",
        '{"sub.$":"$.sub","email.$":"$.email"}',
        "--json",
      ]),
    );
    assert.deepEqual(own, {
      aud: "app",
      iss: "https://id.example.test/",
      algs: ["HS256", "HS512"],
      mapping: { "sub.$": "$.sub", "email.$": "$.email" },
      saved: true,
    });

    const supabase = await server.run([
      "identity-providers",
      "upsert-supabase",
      "--project",
      "abcdefghijklmnop",
      "--secret",
      "super-secret-jwt-token-with-at-least-32-characters",
    ]);
    assert.equal(supabase.code, 0, supabase.stderr);
    assert.match(supabase.stdout, /saved identity provider aud authenticated/);
    const cognito = parsed(
      await server.run([
        "identity-providers",
        "upsert-cognito",
        "--region",
        "eu-west-1",
        "--user-pool-id",
        "eu-west-1_AbCdEfGhI",
        "--json",
      ]),
    );
    const pool = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI";
    assert.deepEqual(cognito, {
      iss: pool,
      algs: ["RS256"],
      jwksUrl: `${pool}/.well-known/jwks.json`,
      mapping: { "sub.$": "$.sub" },
      saved: true,
    });

    // Listed as upserted, never with the secrets; upserting again updates in place.
    const listed = await listIdps();
    assert.equal(listed.length, before + 3);
    assert.deepEqual(
      listed.find((idp) => idp.aud === "authenticated"),
      {
        aud: "authenticated",
        iss: "https://abcdefghijklmnop.supabase.co/auth/v1",
        algs: ["HS256"],
        mapping: { "sub.$": "$.sub", "email.$": "$.email" },
      },
    );
    assert.ok(listed.every((idp) => !("key" in idp)));
    parsed(
      await server.run([
        "identity-providers",
        "upsert-cognito",
        "--region",
        "eu-west-1",
        "--user-pool-id",
        "eu-west-1_AbCdEfGhI",
        "--mapping",
        '{"sub.$":"$.sub","groups.$":"$[\'cognito:groups\']"}',
        "--json",
      ]),
    );
    const updated = await listIdps();
    assert.equal(updated.length, before + 3);
    assert.deepEqual(updated.find((idp) => idp.iss === pool)?.mapping, {
      "sub.$": "$.sub",
      "groups.$": "$['cognito:groups']",
    });
    const table = await server.run(["identity-providers", "list"]);
    assert.match(table.stdout, /^AUD\s+ISS\s+ALGS\s+VERIFIED WITH\s+MAPPING$/m);
    assert.match(table.stdout, /shared secret/);
    assert.ok(!table.stdout.includes("a shared secret of some length"));

    // Delete by exact aud and iss; a second delete finds nothing (4).
    const deleted = parsed(
      await server.run([
        "identity-providers",
        "delete",
        "--aud",
        "authenticated",
        "--iss",
        "https://abcdefghijklmnop.supabase.co/auth/v1",
        "--json",
      ]),
    );
    assert.deepEqual(deleted, {
      aud: "authenticated",
      iss: "https://abcdefghijklmnop.supabase.co/auth/v1",
      deleted: true,
    });
    assert.equal((await listIdps()).length, before + 2);
    const again = await server.run(["identity-providers", "delete", "--aud", "authenticated"]);
    assert.equal(again.code, 4, again.stderr);
  },
);

test("identity-providers: bad mappings and flags are refused clearly", TIMEOUT, async () => {
  const upsert = (...args: string[]) =>
    server.run(["identity-providers", "upsert", "--iss", "https://bad.example.test/", ...args]);
  const secret = ["--alg", "HS256", "--key", "a shared secret of some length"];

  // Caught before anything is sent (2): not JSON, not an object, a path that is not a string.
  for (const mapping of ["{sub", '["$.sub"]', '{"sub.$":5}', '{"a":{"b.$":null}}']) {
    const result = await upsert(...secret, "--mapping", mapping);
    assert.equal(result.code, 2, `${mapping}: ${result.stderr}`);
    assert.match(result.stderr, /option '--mapping <json>' argument .* is invalid/);
    assert.match(result.stderr, /JSON object|JSONPath string/);
  }

  // Refused by the server (1), which names the parameter and says what is wrong.
  const filter = await upsert(...secret, "--mapping", '{"sub.$":"$[?(@.admin)]"}');
  assert.equal(filter.code, 1, filter.stderr);
  assert.match(
    filter.stderr,
    /^backstate: mapping .*\(HTTP 400, code invalid-parameter, parameter mapping\)/m,
  );
  assert.match(filter.stderr, /hint: a mapping is a JSON object/);
  const asJson = await upsert(...secret, "--mapping", '{"sub.$":"$[?(@.admin)]"}', "--json");
  assert.equal(asJson.code, 1);
  assert.equal(asJson.stdout, "");
  const error = (JSON.parse(asJson.stderr) as { error: Record<string, unknown> }).error;
  assert.equal(error.parameter, "mapping");
  assert.equal(error.code, "invalid-parameter");
  assert.equal(error.exitCode, 1);

  // Usage errors (2): no aud or iss, no key, two kinds of key, an algorithm the key cannot verify.
  const usage: string[][] = [
    ["identity-providers", "upsert", ...secret, "--mapping", "{}"],
    ["identity-providers", "upsert", "--iss", "x", "--alg", "HS256", "--mapping", "{}"],
    [
      "identity-providers",
      "upsert",
      "--iss",
      "x",
      ...secret,
      "--jwks-url",
      "https://x.test/jwks",
      "--mapping",
      "{}",
    ],
    [
      "identity-providers",
      "upsert",
      "--iss",
      "x",
      "--alg",
      "RS256",
      "--key",
      "a shared secret of some length",
      "--mapping",
      "{}",
    ],
    [
      "identity-providers",
      "upsert",
      "--iss",
      "x",
      "--alg",
      "XS256",
      "--key",
      "k",
      "--mapping",
      "{}",
    ],
    ["identity-providers", "upsert-auth0", "--domain", "not a domain"],
    ["identity-providers", "delete"],
  ];
  const results = await Promise.all(usage.map((args) => server.run(args)));
  results.forEach((result, index) =>
    assert.equal(result.code, 2, `${usage[index]?.join(" ")}: ${result.stderr}`),
  );
  assert.equal(
    (await listIdps()).some((idp) => idp.iss === "https://bad.example.test/"),
    false,
  );
});

test(
  "token-providers, and an identity provider's token exchanged for one the API accepts",
  TIMEOUT,
  async () => {
    const { orgId } = server.credentials;
    const issuer = "https://login.example.test/";
    const secret = "the identity provider's HS256 secret";
    parsed(
      await server.run([
        "identity-providers",
        "upsert",
        "--iss",
        issuer,
        "--alg",
        "HS256",
        "--key",
        secret,
        "--mapping",
        '{"sub.$":"$.sub","email.$":"$.email"}',
        "--json",
      ]),
    );
    const key = parsed<{ id: string }>(
      await server.run(["keys", "create", "--name", "exchange", "--use", "production", "--json"]),
    );
    const upserted = parsed(
      await server.run([
        "token-providers",
        "upsert",
        "--service",
        "web",
        "--key-id",
        key.id,
        "--mapping",
        '{"sub.$":"$.sub","via":"cli"}',
        "--json",
      ]),
    );
    assert.deepEqual(upserted, {
      service: "web",
      keyId: key.id,
      mapping: { "sub.$": "$.sub", via: "cli" },
      saved: true,
    });
    const listed = parsed<{ tokenProviders: { service: string }[] }>(
      await server.run(["token-providers", "list", "--json"]),
    );
    assert.deepEqual(
      listed.tokenProviders.find((provider) => provider.service === "web"),
      { service: "web", keyId: key.id, mapping: { "sub.$": "$.sub", via: "cli" } },
    );
    const table = await server.run(["token-providers", "list"]);
    assert.match(table.stdout, /^SERVICE\s+KEY\s+MAPPING$/m);
    assert.match(table.stdout, new RegExp(`^web\\s+${key.id}\\s`, "m"));

    // A key of no org of ours (4), a service name the API refuses (2).
    const unknownKey = await server.run([
      "token-providers",
      "upsert",
      "-s",
      "other",
      "-k",
      "sbk_AAAAAAAAAAAAAAAAAAAAAA",
      "-m",
      "{}",
    ]);
    assert.equal(unknownKey.code, 4, unknownKey.stderr);
    const badName = await server.run(["token-providers", "delete", "--service", "no/slash"]);
    assert.equal(badName.code, 2, badName.stderr);

    // alice signs in with the identity provider; her token becomes a Backstate token.
    const subjectToken = await new SignJWT({ email: "alice@example.test" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setIssuer(issuer)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(secret));
    const exchange = () =>
      fetch(`${server.url}/tokens`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          audience: `https://tokens.statebacked.dev/${orgId}/web`,
          subject_token: subjectToken,
          requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
        }),
      });
    const answer = await exchange();
    const body = (await answer.json()) as { access_token: string; token_type: string };
    assert.equal(answer.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, "Bearer");
    const claims = JSON.parse(
      Buffer.from(body.access_token.split(".")[1] ?? "", "base64url").toString("utf8"),
    ) as { act: unknown };
    assert.deepEqual(claims.act, { sub: "alice", via: "cli" });

    // The API knows her as alice: the machine's allowWrite lets her create her instance only.
    const create = (slug: string) =>
      fetch(`${server.url}/machines/toggle`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${body.access_token}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ slug }),
      });
    const hers = await create("alice");
    assert.equal(hers.status, 200, await hers.clone().text());
    assert.equal(((await hers.json()) as { state: string }).state, "off");
    assert.equal((await create("bob")).status, 403);

    // Deleting the token provider, then the identity provider, stops the exchange at once.
    const deleted = parsed(
      await server.run(["token-providers", "delete", "--service", "web", "--json"]),
    );
    assert.deepEqual(deleted, { service: "web", deleted: true });
    const noProvider = await exchange();
    assert.equal(noProvider.status, 403);
    assert.equal(((await noProvider.json()) as { code: string }).code, "token-provider-not-found");
    assert.equal((await server.run(["token-providers", "delete", "-s", "web"])).code, 4);

    parsed(
      await server.run([
        "token-providers",
        "upsert",
        "-s",
        "web",
        "-k",
        key.id,
        "-m",
        '{"sub.$":"$.sub"}',
        "--json",
      ]),
    );
    assert.equal((await exchange()).status, 200);
    parsed(await server.run(["identity-providers", "delete", "--iss", issuer, "--json"]));
    const noIdp = await exchange();
    assert.equal(noIdp.status, 403);
    assert.equal(((await noIdp.json()) as { code: string }).code, "identity-provider-not-found");
  },
);
