-- 0010: a deleted instance's history is removed after its delete, in small chunks (the same
-- revision as SQLite's 0010-history-purges.sql). A delete removed the whole history in its own
-- transaction: 1,000,000 rows were one long transaction holding the instance's lock. The delete
-- now removes the instance row and queues its id here; the history purger of any node
-- (engine/history-purger.ts) deletes the rows a few thousand at a time, each chunk its own short
-- transaction that takes its queue row FOR UPDATE SKIP LOCKED, so two nodes never work on one
-- purge at once nor wait for each other. A purge cut short by a crash goes on at the next look.
-- History rows name their instance by its row id, never reused (an identity), so rows waiting
-- for their purge are never read as, or purged with, those of a new instance of the same name.
-- Purged in id order: oldest instance first, and no clock is needed to queue one.
CREATE TABLE history_purges (
  instance_id BIGINT NOT NULL PRIMARY KEY
);

-- The history's rows now outlive their instance row (every commit still writes a history row
-- only with, and for, the instance row it has just written). The foreign key is found by what it
-- is, not by the name PostgreSQL gave it, which an operator may have changed.
DO $$
DECLARE
  foreign_key TEXT;
BEGIN
  FOR foreign_key IN
    SELECT conname FROM pg_constraint
    WHERE conrelid = 'transitions'::regclass AND confrelid = 'instances'::regclass
      AND contype = 'f'
  LOOP
    EXECUTE format('ALTER TABLE transitions DROP CONSTRAINT %I', foreign_key);
  END LOOP;
END $$;
