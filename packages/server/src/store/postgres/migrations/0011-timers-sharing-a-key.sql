-- 0011: several timers of one instance may share a key (the same revision as SQLite's
-- 0011-timers-sharing-a-key.sql). XState keeps every delayed event it schedules, even one
-- scheduled again under the id of one still pending: both are delivered, and a cancel of that id
-- reaches only the one scheduled last (in XState 5, until one under the id is delivered). Re-arming
-- a key used to replace its timer, and lost the earlier event. A timer is now `detached` from its
-- key once another is armed under it (or, in XState 5, one under it is delivered): it still fires,
-- and no cancel reaches it. At most one timer per key is not detached: the one a cancel deletes.
ALTER TABLE timers ADD COLUMN detached boolean NOT NULL DEFAULT false;
ALTER TABLE timers DROP CONSTRAINT timers_instance_id_key_key;
-- The one timer a cancel of its key reaches; and every timer of an instance, for its delete.
CREATE UNIQUE INDEX timers_by_attached_key ON timers (instance_id, key) WHERE NOT detached;
CREATE INDEX timers_by_instance ON timers (instance_id);
