-- 0002: what the HTTP API keeps (the same revision as SQLite's 0002-api.sql): server settings,
-- users and their org memberships, admin sessions, machine indexes, and code uploads waiting for
-- their finalize. Plus the indexes the API's keyset-paged listings walk.

-- Server-wide values every node of a cluster must agree on (secrets, bootstrap ids): the first
-- value written wins and is never changed.
CREATE TABLE settings (
  name  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  value TEXT             NOT NULL
);

CREATE TABLE users (
  id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name       TEXT             NOT NULL,
  created_at BIGINT           NOT NULL
);

CREATE TABLE org_members (
  org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs (id),
  user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
  role       TEXT             NOT NULL CHECK (role IN ('admin', 'write', 'read')),
  created_at BIGINT           NOT NULL, -- when the user became a member
  updated_at BIGINT           NOT NULL, -- when the role was last set
  PRIMARY KEY (org_id, user_id)
);

-- A user's orgs, in org id order.
CREATE INDEX org_members_by_user ON org_members (user_id, org_id);

-- Looked up by id alone: an admin token names its session before anyone knows the user's orgs.
CREATE TABLE admin_sessions (
  id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
  secret     TEXT             NOT NULL,
  created_at BIGINT           NOT NULL
);

CREATE INDEX admin_sessions_by_user ON admin_sessions (user_id);

-- Uploaded code waiting for the finalize that makes it machine version `id`; dropped by that
-- finalize (in the version's transaction), or purged when it never comes.
CREATE TABLE code_uploads (
  org_id       TEXT COLLATE "C" NOT NULL,
  machine_name TEXT COLLATE "C" NOT NULL,
  id           TEXT COLLATE "C" NOT NULL,
  code         TEXT             NOT NULL,
  created_at   BIGINT           NOT NULL,
  PRIMARY KEY (org_id, machine_name, id),
  FOREIGN KEY (org_id, machine_name) REFERENCES machines (org_id, name)
);

CREATE INDEX code_uploads_by_created_at ON code_uploads (created_at);

-- Index names declared when the machine was created; every existing machine has none.
ALTER TABLE machines ADD COLUMN indexes TEXT NOT NULL DEFAULT '[]'; -- JSON array of names

-- An org's keys in id order (the old index only found the org's rows, in no useful order).
DROP INDEX keys_by_org;
CREATE INDEX keys_by_org ON keys (org_id, id);

-- A machine's versions oldest first, ties broken by id.
CREATE INDEX machine_versions_by_created_at
  ON machine_versions (org_id, machine_name, created_at, id);
