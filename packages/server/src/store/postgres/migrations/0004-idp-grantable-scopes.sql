-- 0004: the most an identity provider's tokens can be exchanged for (the same revision as
-- SQLite's 0004-idp-grantable-scopes.sql): a JSON array of scopes, those of whoever configured it
-- last. NULL for rows saved before, which mint nothing until they are saved again (anonymous
-- ones, capped at the production scopes, excepted).
ALTER TABLE identity_providers ADD COLUMN grantable_scopes TEXT;
