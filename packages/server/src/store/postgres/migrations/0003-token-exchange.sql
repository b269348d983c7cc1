-- 0003: token exchange (the same revision as SQLite's 0003-token-exchange.sql). The identity
-- providers whose tokens an org accepts, and the token providers that turn such tokens into
-- tokens signed with one of the org's keys.

-- An unset aud or iss is stored as '' so that the pair can be the key (and a paging position).
CREATE TABLE identity_providers (
  org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs (id),
  aud        TEXT COLLATE "C" NOT NULL,
  iss        TEXT COLLATE "C" NOT NULL,
  algs       TEXT             NOT NULL, -- JSON array of JWS algorithm names
  key        TEXT,                      -- base64url HMAC secret, or NULL
  jwks_url   TEXT,                      -- where the public keys are published, or NULL
  mapping    TEXT             NOT NULL, -- JSON object
  created_at BIGINT           NOT NULL,
  updated_at BIGINT           NOT NULL,
  PRIMARY KEY (org_id, aud, iss),
  CHECK (aud <> '' OR iss <> ''),
  CHECK ((key IS NULL) <> (jwks_url IS NULL))
);

-- No foreign key to keys: deleting a key is always allowed, and leaves its token providers unable
-- to mint until they are given another key.
CREATE TABLE token_providers (
  org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs (id),
  service    TEXT COLLATE "C" NOT NULL,
  key_id     TEXT COLLATE "C" NOT NULL,
  mapping    TEXT             NOT NULL, -- JSON object
  created_at BIGINT           NOT NULL,
  updated_at BIGINT           NOT NULL,
  PRIMARY KEY (org_id, service)
);
