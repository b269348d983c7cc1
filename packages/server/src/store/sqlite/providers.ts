// The SQLite side of token exchange: identity providers and token providers. Its statements are
// prepared with the others (after migrations); SqliteStore delegates its ProviderStore methods
// here, inside its own error handling.
import type Database from "better-sqlite3";
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
import { insertUnique } from "./sqlite-errors.js";
import type { Statement } from "./statements.js";
import { checkLimit } from "../page-checks.js";

const IDP_COLUMNS = `org_id AS orgId, aud, iss, algs, key, jwks_url AS jwksUrl, mapping,
  grantable_scopes AS grantableScopes, created_at AS createdAt, updated_at AS updatedAt`;

const TOKEN_PROVIDER_COLUMNS = `org_id AS orgId, service, key_id AS keyId, mapping,
  created_at AS createdAt, updated_at AS updatedAt`;

function prepareProviderStatements(db: Database.Database) {
  const prepare = <P extends unknown[], R = unknown>(sql: string): Statement<P, R> =>
    db.prepare<P, R>(sql);
  return {
    upsertIdp: prepare<unknown[]>(
      `INSERT INTO identity_providers (org_id, aud, iss, algs, key, jwks_url, mapping,
         grantable_scopes, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (org_id, aud, iss) DO UPDATE SET algs = excluded.algs, key = excluded.key,
         jwks_url = excluded.jwks_url, mapping = excluded.mapping,
         grantable_scopes = excluded.grantable_scopes, updated_at = excluded.updated_at`,
    ),
    listIdpsFirst: prepare<[orgId: string, limit: number], IdentityProviderRow>(
      `SELECT ${IDP_COLUMNS} FROM identity_providers WHERE org_id = ?
       ORDER BY aud, iss LIMIT ?`,
    ),
    listIdpsAfter: prepare<
      [orgId: string, aud: string, iss: string, limit: number],
      IdentityProviderRow
    >(
      `SELECT ${IDP_COLUMNS} FROM identity_providers WHERE org_id = ? AND (aud, iss) > (?, ?)
       ORDER BY aud, iss LIMIT ?`,
    ),
    // The audiences come as a JSON array; no match for an unset aud needs one ('' is not in it).
    findIdps: prepare<[orgId: string, audiences: string, issuer: string], IdentityProviderRow>(
      `SELECT ${IDP_COLUMNS} FROM identity_providers
       WHERE org_id = ?
         AND (aud = '' OR aud IN (SELECT value FROM json_each(?)))
         AND (iss = '' OR iss = ?)
       ORDER BY (aud <> '') + (iss <> '') DESC, aud, iss`,
    ),
    deleteIdp: prepare<[orgId: string, aud: string, iss: string]>(
      "DELETE FROM identity_providers WHERE org_id = ? AND aud = ? AND iss = ?",
    ),

    upsertTokenProvider: prepare<unknown[]>(
      `INSERT INTO token_providers (org_id, service, key_id, mapping, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (org_id, service) DO UPDATE SET key_id = excluded.key_id,
         mapping = excluded.mapping, updated_at = excluded.updated_at`,
    ),
    selectTokenProvider: prepare<[orgId: string, service: string], TokenProviderRow>(
      `SELECT ${TOKEN_PROVIDER_COLUMNS} FROM token_providers WHERE org_id = ? AND service = ?`,
    ),
    listTokenProvidersFirst: prepare<[orgId: string, limit: number], TokenProviderRow>(
      `SELECT ${TOKEN_PROVIDER_COLUMNS} FROM token_providers WHERE org_id = ?
       ORDER BY service LIMIT ?`,
    ),
    listTokenProvidersAfter: prepare<
      [orgId: string, service: string, limit: number],
      TokenProviderRow
    >(
      `SELECT ${TOKEN_PROVIDER_COLUMNS} FROM token_providers WHERE org_id = ? AND service > ?
       ORDER BY service LIMIT ?`,
    ),
    deleteTokenProvider: prepare<[orgId: string, service: string]>(
      "DELETE FROM token_providers WHERE org_id = ? AND service = ?",
    ),
  };
}

/** The ProviderStore methods, synchronous (better-sqlite3 is); the store wraps them in promises. */
export class SqliteProviders {
  readonly #s: ReturnType<typeof prepareProviderStatements>;

  constructor(db: Database.Database) {
    this.#s = prepareProviderStatements(db);
  }

  upsertIdentityProvider(idp: IdentityProviderRecord): void {
    const values = identityProviderValues(idp);
    insertUnique(() => this.#s.upsertIdp.run(...values), "identity provider", `org ${idp.orgId}`);
  }

  listIdentityProviders(
    orgId: string,
    page: Page<IdentityProviderPosition>,
  ): IdentityProviderRecord[] {
    checkLimit(page.limit);
    if (page.limit === 0) return [];
    const found =
      page.after === undefined
        ? this.#s.listIdpsFirst.all(orgId, page.limit)
        : this.#s.listIdpsAfter.all(orgId, page.after.aud, page.after.iss, page.limit);
    return found.map(toIdentityProvider);
  }

  findIdentityProviders(
    orgId: string,
    token: { audiences: readonly string[]; issuer: string | undefined },
  ): IdentityProviderRecord[] {
    const audiences = JSON.stringify(token.audiences.filter((aud) => aud !== ""));
    // An unset issuer matches only providers without one: "" is what they store.
    return this.#s.findIdps.all(orgId, audiences, token.issuer ?? "").map(toIdentityProvider);
  }

  deleteIdentityProvider(orgId: string, id: IdentityProviderId): boolean {
    const { aud, iss } = idColumns(id);
    return this.#s.deleteIdp.run(orgId, aud, iss).changes > 0;
  }

  upsertTokenProvider(provider: TokenProviderRecord): void {
    const values = tokenProviderValues(provider);
    insertUnique(
      () => this.#s.upsertTokenProvider.run(...values),
      `token provider ${provider.service}`,
      `org ${provider.orgId}`,
    );
  }

  getTokenProvider(orgId: string, service: string): TokenProviderRecord | undefined {
    const found = this.#s.selectTokenProvider.get(orgId, service);
    return found && toTokenProvider(found);
  }

  listTokenProviders(orgId: string, page: Page): TokenProviderRecord[] {
    checkLimit(page.limit);
    if (page.limit === 0) return [];
    const found =
      page.after === undefined
        ? this.#s.listTokenProvidersFirst.all(orgId, page.limit)
        : this.#s.listTokenProvidersAfter.all(orgId, page.after, page.limit);
    return found.map(toTokenProvider);
  }

  deleteTokenProvider(orgId: string, service: string): boolean {
    return this.#s.deleteTokenProvider.run(orgId, service).changes > 0;
  }
}
