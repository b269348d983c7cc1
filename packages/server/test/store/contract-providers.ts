// Contract, part 8: what token exchange keeps. Identity providers (upserted by their aud/iss
// pair, found by a token's audiences and issuer) and token providers (upserted by service), each
// seen only by its own org.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { IdentityProviderRecord, Page, TokenProviderRecord } from "../../src/store/store.js";
import { T0, using, type ContractStore } from "./fixtures.js";

async function seedOrgs(store: ContractStore, ...ids: string[]): Promise<void> {
  for (const id of ids) await store.createOrg({ id, name: `Org ${id}`, createdAt: T0 });
}

function idp(
  orgId: string,
  aud: string | undefined,
  iss: string | undefined,
  extra: Partial<IdentityProviderRecord> = {},
): IdentityProviderRecord {
  return {
    orgId,
    aud,
    iss,
    algs: ["HS256"],
    key: "c2VjcmV0LXNlY3JldC1zZWNyZXQ",
    jwksUrl: undefined,
    mapping: { "sub.$": "$.sub" },
    grantableScopes: ["state.read", "tokens.admin"],
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  };
}

function tokenProvider(
  orgId: string,
  service: string,
  extra: Partial<TokenProviderRecord> = {},
): TokenProviderRecord {
  return {
    orgId,
    service,
    keyId: "sbk_1",
    mapping: { "sub.$": "$.sub", role: "user" },
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  };
}

const pairs = (found: IdentityProviderRecord[]) => found.map((row) => [row.aud, row.iss]);

export function providerContract(open: () => Promise<ContractStore>): void {
  test("identity providers: upserted by (aud, iss), read back whole, keeping createdAt", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a");
      const first = idp("org_a", "aud-1", "https://iss-1/", {
        mapping: { "sub.$": "$.sub", nested: { "email.$": "$.email", literal: [1, "two"] } },
      });
      await store.upsertIdentityProvider(first);
      assert.deepEqual(await store.listIdentityProviders("org_a", { limit: 10 }), [first]);

      // The same pair replaces algs, key, jwksUrl, mapping and grantable scopes; createdAt stays.
      const replaced = idp("org_a", "aud-1", "https://iss-1/", {
        algs: ["RS256", "ES256"],
        key: undefined,
        jwksUrl: "https://iss-1/.well-known/jwks.json",
        mapping: { "uid.$": "$.sub" },
        grantableScopes: ["events.write"],
        createdAt: T0 + 50,
        updatedAt: T0 + 50,
      });
      await store.upsertIdentityProvider(replaced);
      assert.deepEqual(await store.listIdentityProviders("org_a", { limit: 10 }), [
        { ...replaced, createdAt: T0 },
      ]);

      // Only aud, or only iss: two more providers, not replacements.
      await store.upsertIdentityProvider(idp("org_a", "aud-1", undefined));
      await store.upsertIdentityProvider(idp("org_a", undefined, "https://iss-1/"));
      const all = await store.listIdentityProviders("org_a", { limit: 10 });
      assert.deepEqual(pairs(all), [
        [undefined, "https://iss-1/"],
        ["aud-1", undefined],
        ["aud-1", "https://iss-1/"],
      ]);
      assert.equal(all[0]?.aud, undefined, "an unset aud reads back as undefined");

      // Saved without grantable scopes (as rows from before they were recorded): unbounded,
      // read back as undefined, and an upsert that records them replaces that.
      await store.upsertIdentityProvider(
        idp("org_a", "legacy", undefined, { grantableScopes: undefined }),
      );
      const legacy = async () =>
        (await store.listIdentityProviders("org_a", { limit: 10 })).find(
          (row) => row.aud === "legacy",
        );
      assert.equal((await legacy())?.grantableScopes, undefined);
      await store.upsertIdentityProvider(
        idp("org_a", "legacy", undefined, { grantableScopes: [] }),
      );
      assert.deepEqual((await legacy())?.grantableScopes, []);
      assert.ok(!("secret" in (all[0] ?? {})));
    }));

  test("identity providers: refused without an org, an aud or iss, or exactly one key source", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a");
      await assert.rejects(store.upsertIdentityProvider(idp("org_x", "a", undefined)), {
        code: "not-found",
      });
      await assert.rejects(
        store.upsertIdentityProvider(idp("org_a", undefined, undefined)),
        TypeError,
      );
      await assert.rejects(store.upsertIdentityProvider(idp("org_a", "", "i")), TypeError);
      await assert.rejects(
        store.upsertIdentityProvider(idp("org_a", "a", undefined, { jwksUrl: "https://x/" })),
        TypeError,
      );
      await assert.rejects(
        store.upsertIdentityProvider(idp("org_a", "a", undefined, { key: undefined })),
        TypeError,
      );
      assert.deepEqual(await store.listIdentityProviders("org_a", { limit: 10 }), []);
    }));

  test("identity providers: listed per org by (aud, iss), paged", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a", "org_b");
      const ids: [string | undefined, string | undefined][] = [
        ["b", "2"],
        [undefined, "9"],
        ["a", undefined],
        ["b", undefined],
        ["a", "1"],
      ];
      for (const [aud, iss] of ids) await store.upsertIdentityProvider(idp("org_a", aud, iss));
      await store.upsertIdentityProvider(idp("org_b", "a", "0"));

      const ofPage = async (page: Page<{ aud: string; iss: string }>) =>
        pairs(await store.listIdentityProviders("org_a", page));
      assert.deepEqual(await ofPage({ limit: 10 }), [
        [undefined, "9"],
        ["a", undefined],
        ["a", "1"],
        ["b", undefined],
        ["b", "2"],
      ]);
      assert.deepEqual(await ofPage({ limit: 2 }), [
        [undefined, "9"],
        ["a", undefined],
      ]);
      // Positions use "" for an unset value.
      assert.deepEqual(await ofPage({ after: { aud: "a", iss: "" }, limit: 2 }), [
        ["a", "1"],
        ["b", undefined],
      ]);
      assert.deepEqual(await ofPage({ after: { aud: "b", iss: "" }, limit: 2 }), [["b", "2"]]);
      assert.deepEqual(await ofPage({ after: { aud: "b", iss: "2" }, limit: 2 }), []);
      assert.deepEqual(await ofPage({ limit: 0 }), []);
      assert.deepEqual(pairs(await store.listIdentityProviders("org_b", { limit: 10 })), [
        ["a", "0"],
      ]);
      assert.deepEqual(await store.listIdentityProviders("org_x", { limit: 10 }), []);
    }));

  test("identity providers: found by a token's audiences and issuer, the most specific first", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a", "org_b");
      await store.upsertIdentityProvider(idp("org_a", "app", "https://issuer/"));
      await store.upsertIdentityProvider(idp("org_a", "app", undefined));
      await store.upsertIdentityProvider(idp("org_a", undefined, "https://issuer/"));
      await store.upsertIdentityProvider(idp("org_a", "other", "https://issuer/"));
      await store.upsertIdentityProvider(idp("org_a", "app", "https://elsewhere/"));
      await store.upsertIdentityProvider(idp("org_b", "app", "https://issuer/"));

      const find = async (audiences: string[], issuer: string | undefined) =>
        pairs(await store.findIdentityProviders("org_a", { audiences, issuer }));
      assert.deepEqual(await find(["app"], "https://issuer/"), [
        ["app", "https://issuer/"],
        [undefined, "https://issuer/"],
        ["app", undefined],
      ]);
      assert.deepEqual(await find(["app", "other"], "https://issuer/"), [
        ["app", "https://issuer/"],
        ["other", "https://issuer/"],
        [undefined, "https://issuer/"],
        ["app", undefined],
      ]);
      assert.deepEqual(await find(["app"], undefined), [["app", undefined]]);
      assert.deepEqual(await find([], "https://issuer/"), [[undefined, "https://issuer/"]]);
      assert.deepEqual(await find(["nope"], "https://nope/"), []);
      assert.deepEqual(await find([], undefined), []);
      // An empty audience never matches a provider without one.
      assert.deepEqual(await find([""], undefined), []);
      // Only the org's own providers.
      assert.deepEqual(
        pairs(await store.findIdentityProviders("org_b", { audiences: ["app"], issuer: "x" })),
        [],
      );
      assert.deepEqual(
        pairs(
          await store.findIdentityProviders("org_x", { audiences: ["app"], issuer: undefined }),
        ),
        [],
      );
    }));

  test("identity providers: deleted by their exact (aud, iss), in their org only", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a", "org_b");
      await store.upsertIdentityProvider(idp("org_a", "app", "https://issuer/"));
      await store.upsertIdentityProvider(idp("org_a", "app", undefined));
      await store.upsertIdentityProvider(idp("org_b", "app", undefined));

      assert.equal(
        await store.deleteIdentityProvider("org_b", { aud: "x", iss: undefined }),
        false,
      );
      assert.equal(
        await store.deleteIdentityProvider("org_a", { aud: undefined, iss: "https://issuer/" }),
        false,
        "a pair, not a prefix",
      );
      assert.equal(
        await store.deleteIdentityProvider("org_a", { aud: "app", iss: undefined }),
        true,
      );
      assert.equal(
        await store.deleteIdentityProvider("org_a", { aud: "app", iss: undefined }),
        false,
      );
      assert.deepEqual(pairs(await store.listIdentityProviders("org_a", { limit: 10 })), [
        ["app", "https://issuer/"],
      ]);
      assert.deepEqual(pairs(await store.listIdentityProviders("org_b", { limit: 10 })), [
        ["app", undefined],
      ]);
      await assert.rejects(
        store.deleteIdentityProvider("org_a", { aud: undefined, iss: undefined }),
        TypeError,
      );
    }));

  test("token providers: upserted by service, read, listed, deleted, per org", () =>
    using(open, async (store) => {
      await seedOrgs(store, "org_a", "org_b");
      const svc = tokenProvider("org_a", "svc", {
        mapping: { "sub.$": "$.sub", deep: { "x.$": "$.x" }, list: [1, 2] },
      });
      await store.upsertTokenProvider(svc);
      assert.deepEqual(await store.getTokenProvider("org_a", "svc"), svc);
      assert.equal(await store.getTokenProvider("org_b", "svc"), undefined);
      assert.equal(await store.getTokenProvider("org_a", "nope"), undefined);

      const replaced = tokenProvider("org_a", "svc", {
        keyId: "sbk_2",
        mapping: { auth: "x" },
        createdAt: T0 + 9,
        updatedAt: T0 + 9,
      });
      await store.upsertTokenProvider(replaced);
      assert.deepEqual(await store.getTokenProvider("org_a", "svc"), {
        ...replaced,
        createdAt: T0,
      });

      for (const service of ["d", "b", "e", "a", "c"]) {
        await store.upsertTokenProvider(tokenProvider("org_a", service));
      }
      await store.upsertTokenProvider(tokenProvider("org_b", "a"));
      const ofPage = async (page: Page) =>
        (await store.listTokenProviders("org_a", page)).map((provider) => provider.service);
      assert.deepEqual(await ofPage({ limit: 10 }), ["a", "b", "c", "d", "e", "svc"]);
      assert.deepEqual(await ofPage({ limit: 2 }), ["a", "b"]);
      assert.deepEqual(await ofPage({ after: "b", limit: 2 }), ["c", "d"]);
      assert.deepEqual(await ofPage({ after: "e", limit: 2 }), ["svc"]);
      assert.deepEqual(await ofPage({ after: "svc", limit: 2 }), []);
      assert.deepEqual(await ofPage({ limit: 0 }), []);
      assert.deepEqual(
        (await store.listTokenProviders("org_b", { limit: 10 })).map((p) => p.service),
        ["a"],
      );

      assert.equal(await store.deleteTokenProvider("org_b", "svc"), false);
      assert.equal(await store.deleteTokenProvider("org_a", "svc"), true);
      assert.equal(await store.deleteTokenProvider("org_a", "svc"), false);
      assert.equal(await store.getTokenProvider("org_a", "svc"), undefined);
      assert.ok(await store.getTokenProvider("org_b", "a"), "the other org's stays");

      await assert.rejects(store.upsertTokenProvider(tokenProvider("org_x", "svc")), {
        code: "not-found",
      });
    }));
}
