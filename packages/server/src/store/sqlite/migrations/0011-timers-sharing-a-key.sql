-- 0011: several timers of one instance may share a key (the same revision as PostgreSQL's
-- 0011-timers-sharing-a-key.sql). XState keeps every delayed event it schedules, even one
-- scheduled again under the id of one still pending: both are delivered, and a cancel of that id
-- reaches only the one scheduled last (in XState 5, until one under the id is delivered). Re-arming
-- a key used to replace its timer, and lost the earlier event. A timer is now `detached` from its
-- key once another is armed under it (or, in XState 5, one under it is delivered): it still fires,
-- and no cancel reaches it. At most one timer per key is not detached: the one a cancel deletes.
-- SQLite cannot drop the old UNIQUE (instance_id, key): the table is made again without it.
CREATE TABLE timers_0011 (
  id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  instance_id   INTEGER NOT NULL REFERENCES instances (id),
  key           TEXT    NOT NULL, -- the send id
  due_at        INTEGER NOT NULL,
  event         TEXT    NOT NULL, -- JSON
  attempts      INTEGER NOT NULL DEFAULT 0,
  claimed_until INTEGER,
  org_id        TEXT    NOT NULL DEFAULT '',
  detached      INTEGER NOT NULL DEFAULT 0 -- 1: no cancel of its key reaches it any more
) STRICT;
INSERT INTO timers_0011 (id, instance_id, key, due_at, event, attempts, claimed_until, org_id)
  SELECT id, instance_id, key, due_at, event, attempts, claimed_until, org_id FROM timers;
-- Timer ids are never reused (a stale id must not attach to a new timer): the new table goes on
-- from the old one's sequence, which dropping the old table forgets.
CREATE TEMP TABLE timers_0011_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'timers';
DROP TABLE timers;
ALTER TABLE timers_0011 RENAME TO timers;
DELETE FROM sqlite_sequence WHERE name = 'timers';
INSERT INTO sqlite_sequence (name, seq) SELECT 'timers', seq FROM timers_0011_sequence;
DROP TABLE temp.timers_0011_sequence;

CREATE INDEX timers_by_due_at ON timers (due_at);
-- Few timers are leased at any moment; this keeps finding the earliest lease end cheap.
CREATE INDEX timers_by_claimed_until ON timers (claimed_until) WHERE claimed_until IS NOT NULL;
CREATE INDEX timers_by_org_due_at ON timers (org_id, due_at);
-- The one timer a cancel of its key reaches; and every timer of an instance, for its delete.
CREATE UNIQUE INDEX timers_by_attached_key ON timers (instance_id, key) WHERE detached = 0;
CREATE INDEX timers_by_instance ON timers (instance_id);
