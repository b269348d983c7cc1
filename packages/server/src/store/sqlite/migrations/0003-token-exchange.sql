-- 0003: token exchange. The identity providers whose tokens an org accepts, and the token
-- providers that turn such tokens into tokens signed with one of the org's keys.

-- An unset aud or iss is stored as '' so that the pair can be the key (and a paging position).
CREATE TABLE identity_providers (
  org_id     TEXT    NOT NULL REFERENCES orgs (id),
  aud        TEXT    NOT NULL,
  iss        TEXT    NOT NULL,
  algs       TEXT    NOT NULL, -- JSON array of JWS algorithm names
  key        TEXT,             -- base64url HMAC secret, or NULL
  jwks_url   TEXT,             -- where the public keys are published, or NULL
  mapping    TEXT    NOT NULL, -- JSON object
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (org_id, aud, iss),
  CHECK (aud <> '' OR iss <> ''),
  CHECK ((key IS NULL) <> (jwks_url IS NULL))
) STRICT;

-- No foreign key to keys: deleting a key is always allowed, and leaves its token providers unable
-- to mint until they are given another key.
CREATE TABLE token_providers (
  org_id     TEXT    NOT NULL REFERENCES orgs (id),
  service    TEXT    NOT NULL,
  key_id     TEXT    NOT NULL,
  mapping    TEXT    NOT NULL, -- JSON object
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (org_id, service)
) STRICT;
