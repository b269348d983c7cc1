-- 0010: a deleted instance's history is removed after its delete, in small chunks (the same
-- revision as PostgreSQL's 0010-history-purges.sql). Deleting 1,000,000 history rows in the
-- delete's own transaction held the (synchronous) SQLite connection, and so the whole node, for
-- 1.5 to 2.5 s. The delete now removes the instance row and queues its id here; the history purger
-- (engine/history-purger.ts) deletes the rows a few thousand at a time until none is left, and a
-- purge cut short by a crash or restart goes on at the next start, as the queue is a table.
-- History rows name their instance by its row id, never reused (AUTOINCREMENT), so rows waiting
-- for their purge are never read as, or purged with, those of a new instance of the same name.
-- Purged in id order: oldest instance first, and no clock is needed to queue one.
CREATE TABLE history_purges (
  instance_id INTEGER NOT NULL PRIMARY KEY
) STRICT;

-- The history's foreign key to instances must go, as its rows now outlive their instance row.
-- SQLite cannot drop a constraint: the table is made again without it (every commit still writes
-- a history row only with, and for, the instance row it has just written). Copying the history
-- takes about 2.3 s per 1,000,000 rows, once, at the first start of this version.
CREATE TABLE transitions_0010 (
  instance_id INTEGER NOT NULL,
  sequence    INTEGER NOT NULL,
  event       TEXT    NOT NULL, -- JSON
  state       TEXT    NOT NULL, -- JSON state value
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (instance_id, sequence)
) STRICT;
INSERT INTO transitions_0010 (instance_id, sequence, event, state, created_at)
  SELECT instance_id, sequence, event, state, created_at FROM transitions;
DROP TABLE transitions;
ALTER TABLE transitions_0010 RENAME TO transitions;
