-- 0006: each version's index selectors (index name -> JSONPath into the instance's context), as
-- given when the version was finalized, kept as JSON text; NULL when it has none. Nothing reads
-- them yet: they are stored now so that versions made before index queries exist keep theirs.
ALTER TABLE machine_versions ADD COLUMN index_selectors TEXT;
