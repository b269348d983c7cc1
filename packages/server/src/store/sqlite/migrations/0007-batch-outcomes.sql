-- 0007: nothing on SQLite. PostgreSQL keeps each group-commit batch's answer (batch_outcomes) for
-- a node whose connection breaks before the answer comes; SQLite commits in this process, where
-- no answer can be lost on the way. The revision exists so both stores count the same revisions.
SELECT 1;
