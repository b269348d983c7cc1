-- 0001: the initial schema.
-- Every row that belongs to an org carries org_id (directly, or through its instance), and every
-- lookup names it, so no query can reach another org's data by a name or id alone.
-- STRICT tables: a value of the wrong type is an error, not silently stored.

CREATE TABLE orgs (
  id         TEXT    NOT NULL PRIMARY KEY,
  name       TEXT    NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

-- Looked up by id alone: a token names its key before anyone knows the org.
CREATE TABLE keys (
  id         TEXT    NOT NULL PRIMARY KEY,
  org_id     TEXT    NOT NULL REFERENCES orgs (id),
  name       TEXT    NOT NULL,
  secret     TEXT    NOT NULL,
  scopes     TEXT    NOT NULL, -- JSON array of scope names
  created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX keys_by_org ON keys (org_id);

-- current_version_id may be NULL (no version uploaded yet); the composite foreign key is only
-- checked when it is set, and then only against versions of this very machine.
CREATE TABLE machines (
  org_id             TEXT    NOT NULL REFERENCES orgs (id),
  name               TEXT    NOT NULL,
  current_version_id TEXT,
  created_at         INTEGER NOT NULL,
  PRIMARY KEY (org_id, name),
  FOREIGN KEY (org_id, name, current_version_id)
    REFERENCES machine_versions (org_id, machine_name, id)
) STRICT;

CREATE TABLE machine_versions (
  org_id       TEXT    NOT NULL,
  machine_name TEXT    NOT NULL,
  id           TEXT    NOT NULL,
  code         TEXT    NOT NULL,
  hash         TEXT    NOT NULL, -- hex SHA-256 of code
  client_info  TEXT,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (org_id, machine_name, id),
  FOREIGN KEY (org_id, machine_name) REFERENCES machines (org_id, name)
) STRICT;

-- AUTOINCREMENT: ids are never reused, so a stale timer id or history row can never attach to a
-- later instance.
CREATE TABLE instances (
  id                 INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  org_id             TEXT    NOT NULL,
  machine_name       TEXT    NOT NULL,
  name               TEXT    NOT NULL,
  machine_version_id TEXT    NOT NULL,
  snapshot           TEXT    NOT NULL, -- JSON, opaque to the store
  status             TEXT    NOT NULL CHECK (status IN ('running', 'paused')),
  sequence           INTEGER NOT NULL, -- committed transitions so far (optimistic writer check)
  pending_services   TEXT    NOT NULL, -- JSON array of service ids
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  UNIQUE (org_id, machine_name, name),
  FOREIGN KEY (org_id, machine_name, machine_version_id)
    REFERENCES machine_versions (org_id, machine_name, id)
) STRICT;

CREATE TABLE transitions (
  instance_id INTEGER NOT NULL REFERENCES instances (id),
  sequence    INTEGER NOT NULL,
  event       TEXT    NOT NULL, -- JSON
  state       TEXT    NOT NULL, -- JSON state value
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (instance_id, sequence)
) STRICT;

-- A timer is claimable when due_at has passed and claimed_until is NULL or has passed too.
CREATE TABLE timers (
  id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  instance_id   INTEGER NOT NULL REFERENCES instances (id),
  key           TEXT    NOT NULL, -- the send id; re-arming a key replaces the timer
  due_at        INTEGER NOT NULL,
  event         TEXT    NOT NULL, -- JSON
  attempts      INTEGER NOT NULL DEFAULT 0,
  claimed_until INTEGER,
  UNIQUE (instance_id, key)
) STRICT;

CREATE INDEX timers_by_due_at ON timers (due_at);
-- Few timers are leased at any moment; this keeps finding the earliest lease end cheap.
CREATE INDEX timers_by_claimed_until ON timers (claimed_until) WHERE claimed_until IS NOT NULL;
