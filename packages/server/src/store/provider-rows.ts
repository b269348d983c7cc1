// The rows both adapters read for token exchange (identity and token providers), mapped to the
// port's records. An identity provider's unset aud or iss is stored as "" (so the pair can be a
// primary key and a keyset position); here it becomes undefined again. JSON columns are parsed
// and checked, as in rows.ts.
import { BackstateError } from "../errors.js";
import type { IdentityProviderId, IdentityProviderRecord, TokenProviderRecord } from "./store.js";

export type IdentityProviderRow = {
  orgId: string;
  aud: string;
  iss: string;
  algs: string;
  key: string | null;
  jwksUrl: string | null;
  mapping: string;
  grantableScopes: string | null;
  createdAt: number;
  updatedAt: number;
};

export type TokenProviderRow = {
  orgId: string;
  service: string;
  keyId: string;
  mapping: string;
  createdAt: number;
  updatedAt: number;
};

/** The column values of an identity provider, in the order both adapters' upserts take them. */
export function identityProviderValues(idp: IdentityProviderRecord): unknown[] {
  const { aud, iss } = idColumns(idp);
  const hasKey = idp.key !== undefined;
  if (hasKey === (idp.jwksUrl !== undefined)) {
    throw new TypeError("an identity provider needs exactly one of key and jwksUrl");
  }
  if (idp.key === "" || idp.jwksUrl === "") throw new TypeError("key and jwksUrl cannot be empty");
  return [
    idp.orgId,
    aud,
    iss,
    JSON.stringify(idp.algs),
    idp.key ?? null,
    idp.jwksUrl ?? null,
    JSON.stringify(idp.mapping),
    idp.grantableScopes === undefined ? null : JSON.stringify(idp.grantableScopes),
    idp.createdAt,
    idp.updatedAt,
  ];
}

/** The stored (aud, iss) of a provider: "" for unset; refuses a pair with neither, or an empty one. */
export function idColumns(id: IdentityProviderId): { aud: string; iss: string } {
  if (id.aud === "" || id.iss === "") {
    throw new TypeError("an identity provider's aud and iss are unset or non-empty");
  }
  if (id.aud === undefined && id.iss === undefined) {
    throw new TypeError("an identity provider needs an aud, an iss, or both");
  }
  return { aud: id.aud ?? "", iss: id.iss ?? "" };
}

export function tokenProviderValues(provider: TokenProviderRecord): unknown[] {
  return [
    provider.orgId,
    provider.service,
    provider.keyId,
    JSON.stringify(provider.mapping),
    provider.createdAt,
    provider.updatedAt,
  ];
}

export function toIdentityProvider(row: IdentityProviderRow): IdentityProviderRecord {
  return {
    orgId: row.orgId,
    aud: row.aud === "" ? undefined : row.aud,
    iss: row.iss === "" ? undefined : row.iss,
    algs: parseJson(row.algs, "identity_providers.algs", isStringArray),
    key: row.key ?? undefined,
    jwksUrl: row.jwksUrl ?? undefined,
    mapping: parseJson(row.mapping, "identity_providers.mapping", isObject),
    grantableScopes:
      row.grantableScopes === null
        ? undefined
        : parseJson(row.grantableScopes, "identity_providers.grantable_scopes", isStringArray),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function toTokenProvider(row: TokenProviderRow): TokenProviderRecord {
  return { ...row, mapping: parseJson(row.mapping, "token_providers.mapping", isObject) };
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJson<T>(text: string, column: string, check: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!check(value)) {
    throw new BackstateError("store-error", `unexpected value in ${column}: ${text.slice(0, 100)}`);
  }
  return value;
}
