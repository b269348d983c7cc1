-- 0004: the most an identity provider's tokens can be exchanged for (a JSON array of scopes): the
-- scopes of whoever configured it last. NULL for rows saved before: they keep the unbounded power
-- they were configured with until they are saved again.
ALTER TABLE identity_providers ADD COLUMN grantable_scopes TEXT;
