-- 0007: what each group-commit batch answered, under a token its node chose, written in the
-- batch's own transaction. A node whose connection broke before the answer came reads it back
-- here; if the batch has not committed yet, the node's own row under that token (results NULL)
-- fences it: the batch's insert then fails, and the batch writes nothing. Answers are kept an
-- hour; fences (results NULL), rare and small, for good: a fenced batch may come at any time.
CREATE TABLE batch_outcomes (
  token      TEXT COLLATE "C" PRIMARY KEY,
  results    JSONB,
  created_at BIGINT NOT NULL
);
CREATE INDEX batch_outcomes_by_age ON batch_outcomes (created_at);
