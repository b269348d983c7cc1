-- 0004: the most an identity provider's tokens can be exchanged for (the same revision as
-- SQLite's 0004-idp-grantable-scopes.sql): a JSON array of scopes, those of whoever configured it
-- last. NULL for rows saved before: they keep the unbounded power they were configured with until
-- they are saved again.
ALTER TABLE identity_providers ADD COLUMN grantable_scopes TEXT;
