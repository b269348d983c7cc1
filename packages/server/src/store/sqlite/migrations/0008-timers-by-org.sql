-- 0008: each timer names its instance's org, so that due timers can be claimed org by org: one
-- org's backlog of due timers must not hold back another org's (see fair-timer-claims.ts). Timers
-- are inserted with it (statements.ts); those already armed get it here.
ALTER TABLE timers ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
UPDATE timers SET org_id = (SELECT org_id FROM instances WHERE instances.id = timers.instance_id);
CREATE INDEX timers_by_org_due_at ON timers (org_id, due_at);
