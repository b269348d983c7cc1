-- 0001: the initial schema (the same revision as SQLite's 0001-init.sql).
-- Every row that belongs to an org carries org_id (directly, or through its instance), and every
-- lookup names it, so no query can reach another org's data by a name or id alone.
-- Ids and names are COLLATE "C": compared and ordered byte by byte, as SQLite does, whatever the
-- database's locale, so keyset paging lists in the same order on both. Epoch-ms columns are BIGINT.
-- JSON is kept as TEXT: the store hands it back byte for byte as it was given.

CREATE TABLE orgs (
  id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name       TEXT             NOT NULL,
  created_at BIGINT           NOT NULL
);

-- Looked up by id alone: a token names its key before anyone knows the org.
CREATE TABLE keys (
  id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs (id),
  name       TEXT             NOT NULL,
  secret     TEXT             NOT NULL,
  scopes     TEXT             NOT NULL, -- JSON array of scope names
  created_at BIGINT           NOT NULL
);

CREATE INDEX keys_by_org ON keys (org_id);

-- current_version_id may be NULL (no version uploaded yet); the composite foreign key (added
-- below, once machine_versions exists) is only checked when it is set (MATCH SIMPLE), and then
-- only against versions of this very machine.
CREATE TABLE machines (
  org_id             TEXT COLLATE "C" NOT NULL REFERENCES orgs (id),
  name               TEXT COLLATE "C" NOT NULL,
  current_version_id TEXT COLLATE "C",
  created_at         BIGINT           NOT NULL,
  PRIMARY KEY (org_id, name)
);

CREATE TABLE machine_versions (
  org_id       TEXT COLLATE "C" NOT NULL,
  machine_name TEXT COLLATE "C" NOT NULL,
  id           TEXT COLLATE "C" NOT NULL,
  code         TEXT             NOT NULL,
  hash         TEXT             NOT NULL, -- hex SHA-256 of code
  client_info  TEXT,
  created_at   BIGINT           NOT NULL,
  PRIMARY KEY (org_id, machine_name, id),
  FOREIGN KEY (org_id, machine_name) REFERENCES machines (org_id, name)
);

ALTER TABLE machines ADD CONSTRAINT machines_current_version_fkey
  FOREIGN KEY (org_id, name, current_version_id)
  REFERENCES machine_versions (org_id, machine_name, id);

-- An identity is never reused (like SQLite's AUTOINCREMENT), so a stale timer id or history row
-- can never attach to a later instance.
CREATE TABLE instances (
  id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id             TEXT COLLATE "C" NOT NULL,
  machine_name       TEXT COLLATE "C" NOT NULL,
  name               TEXT COLLATE "C" NOT NULL,
  machine_version_id TEXT COLLATE "C" NOT NULL,
  snapshot           TEXT             NOT NULL, -- JSON, opaque to the store
  status             TEXT             NOT NULL CHECK (status IN ('running', 'paused')),
  sequence           BIGINT           NOT NULL, -- committed transitions so far (optimistic check)
  pending_services   TEXT             NOT NULL, -- JSON array of service ids
  created_at         BIGINT           NOT NULL,
  updated_at         BIGINT           NOT NULL,
  UNIQUE (org_id, machine_name, name),
  FOREIGN KEY (org_id, machine_name, machine_version_id)
    REFERENCES machine_versions (org_id, machine_name, id)
);

CREATE TABLE transitions (
  instance_id BIGINT NOT NULL REFERENCES instances (id),
  sequence    BIGINT NOT NULL,
  event       TEXT   NOT NULL, -- JSON
  state       TEXT   NOT NULL, -- JSON state value
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (instance_id, sequence)
);

-- A timer is claimable when due_at has passed and claimed_until is NULL or has passed too.
CREATE TABLE timers (
  id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance_id   BIGINT           NOT NULL REFERENCES instances (id),
  key           TEXT COLLATE "C" NOT NULL, -- the send id; re-arming a key replaces the timer
  due_at        BIGINT           NOT NULL,
  event         TEXT             NOT NULL, -- JSON
  attempts      BIGINT           NOT NULL DEFAULT 0,
  claimed_until BIGINT,
  UNIQUE (instance_id, key)
);

CREATE INDEX timers_by_due_at ON timers (due_at);
-- Few timers are leased at any moment; this keeps finding the earliest lease end cheap.
CREATE INDEX timers_by_claimed_until ON timers (claimed_until) WHERE claimed_until IS NOT NULL;
