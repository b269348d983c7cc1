// The PostgreSQL side of token exchange: identity providers and token providers, each method a
// statement or two on whatever the store hands it (the pool). PostgresStore delegates its
// ProviderStore methods here, inside its own error handling.
import {
  idColumns,
  identityProviderValues,
  toIdentityProvider,
  toTokenProvider,
  tokenProviderValues,
  type IdentityProviderRow,
  type TokenProviderRow,
} from "../provider-rows.js";
import type {
  IdentityProviderId,
  IdentityProviderPosition,
  IdentityProviderRecord,
  Page,
  TokenProviderRecord,
} from "../store.js";
import { changes, insertUnique, row, rows, type Queryable } from "./connection.js";
import { checkLimit } from "../page-checks.js";

const IDP_COLUMNS = `org_id AS "orgId", aud, iss, algs, key, jwks_url AS "jwksUrl", mapping,
  grantable_scopes AS "grantableScopes", created_at AS "createdAt", updated_at AS "updatedAt"`;

const TOKEN_PROVIDER_COLUMNS = `org_id AS "orgId", service, key_id AS "keyId", mapping,
  created_at AS "createdAt", updated_at AS "updatedAt"`;

const SQL = {
  upsertIdp: `INSERT INTO identity_providers (org_id, aud, iss, algs, key, jwks_url, mapping,
      grantable_scopes, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (org_id, aud, iss) DO UPDATE SET algs = EXCLUDED.algs, key = EXCLUDED.key,
      jwks_url = EXCLUDED.jwks_url, mapping = EXCLUDED.mapping,
      grantable_scopes = EXCLUDED.grantable_scopes, updated_at = EXCLUDED.updated_at`,
  listIdpsFirst: `SELECT ${IDP_COLUMNS} FROM identity_providers WHERE org_id = $1
    ORDER BY aud, iss LIMIT $2`,
  listIdpsAfter: `SELECT ${IDP_COLUMNS} FROM identity_providers
    WHERE org_id = $1 AND (aud, iss) > ($2, $3)
    ORDER BY aud, iss LIMIT $4`,
  findIdps: `SELECT ${IDP_COLUMNS} FROM identity_providers
    WHERE org_id = $1 AND (aud = '' OR aud = ANY ($2::text[])) AND (iss = '' OR iss = $3)
    ORDER BY (aud <> '')::int + (iss <> '')::int DESC, aud, iss`,
  deleteIdp: "DELETE FROM identity_providers WHERE org_id = $1 AND aud = $2 AND iss = $3",

  upsertTokenProvider: `INSERT INTO token_providers (org_id, service, key_id, mapping, created_at,
      updated_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (org_id, service) DO UPDATE SET key_id = EXCLUDED.key_id,
      mapping = EXCLUDED.mapping, updated_at = EXCLUDED.updated_at`,
  selectTokenProvider: `SELECT ${TOKEN_PROVIDER_COLUMNS} FROM token_providers
    WHERE org_id = $1 AND service = $2`,
  listTokenProvidersFirst: `SELECT ${TOKEN_PROVIDER_COLUMNS} FROM token_providers
    WHERE org_id = $1 ORDER BY service LIMIT $2`,
  listTokenProvidersAfter: `SELECT ${TOKEN_PROVIDER_COLUMNS} FROM token_providers
    WHERE org_id = $1 AND service > $2 ORDER BY service LIMIT $3`,
  deleteTokenProvider: "DELETE FROM token_providers WHERE org_id = $1 AND service = $2",
};

export async function upsertIdentityProvider(
  db: Queryable,
  idp: IdentityProviderRecord,
): Promise<void> {
  const values = identityProviderValues(idp);
  await insertUnique(
    () => db.query(SQL.upsertIdp, values),
    "identity provider",
    `org ${idp.orgId}`,
  );
}

export async function listIdentityProviders(
  db: Queryable,
  orgId: string,
  page: Page<IdentityProviderPosition>,
): Promise<IdentityProviderRecord[]> {
  checkLimit(page.limit);
  if (page.limit === 0) return [];
  const found =
    page.after === undefined
      ? await rows<IdentityProviderRow>(db, SQL.listIdpsFirst, [orgId, page.limit])
      : await rows<IdentityProviderRow>(db, SQL.listIdpsAfter, [
          orgId,
          page.after.aud,
          page.after.iss,
          page.limit,
        ]);
  return found.map(toIdentityProvider);
}

export async function findIdentityProviders(
  db: Queryable,
  orgId: string,
  token: { audiences: readonly string[]; issuer: string | undefined },
): Promise<IdentityProviderRecord[]> {
  const audiences = token.audiences.filter((aud) => aud !== "");
  // An unset issuer matches only providers without one: "" is what they store.
  const found = await rows<IdentityProviderRow>(db, SQL.findIdps, [
    orgId,
    audiences,
    token.issuer ?? "",
  ]);
  return found.map(toIdentityProvider);
}

export async function deleteIdentityProvider(
  db: Queryable,
  orgId: string,
  id: IdentityProviderId,
): Promise<boolean> {
  const { aud, iss } = idColumns(id);
  return (await changes(db, SQL.deleteIdp, [orgId, aud, iss])) > 0;
}

export async function upsertTokenProvider(
  db: Queryable,
  provider: TokenProviderRecord,
): Promise<void> {
  const values = tokenProviderValues(provider);
  await insertUnique(
    () => db.query(SQL.upsertTokenProvider, values),
    `token provider ${provider.service}`,
    `org ${provider.orgId}`,
  );
}

export async function getTokenProvider(
  db: Queryable,
  orgId: string,
  service: string,
): Promise<TokenProviderRecord | undefined> {
  const found = await row<TokenProviderRow>(db, SQL.selectTokenProvider, [orgId, service]);
  return found && toTokenProvider(found);
}

export async function listTokenProviders(
  db: Queryable,
  orgId: string,
  page: Page,
): Promise<TokenProviderRecord[]> {
  checkLimit(page.limit);
  if (page.limit === 0) return [];
  const found =
    page.after === undefined
      ? await rows<TokenProviderRow>(db, SQL.listTokenProvidersFirst, [orgId, page.limit])
      : await rows<TokenProviderRow>(db, SQL.listTokenProvidersAfter, [
          orgId,
          page.after,
          page.limit,
        ]);
  return found.map(toTokenProvider);
}

export async function deleteTokenProvider(
  db: Queryable,
  orgId: string,
  service: string,
): Promise<boolean> {
  return (await changes(db, SQL.deleteTokenProvider, [orgId, service])) > 0;
}
