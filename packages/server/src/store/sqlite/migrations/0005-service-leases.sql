-- 0005: which node runs an instance's services. A node leases an instance before committing a
-- step that starts services there, renews the lease while they run and ends it when they stop;
-- other nodes do not count those services lost while the lease lasts. Keyed by the instance's
-- name, not its id, so the lease can be taken before the instance's first commit; a lease left
-- by a node that died runs out, and is removed later.
CREATE TABLE service_leases (
  org_id        TEXT    NOT NULL,
  machine_name  TEXT    NOT NULL,
  instance_name TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  until         INTEGER NOT NULL,
  PRIMARY KEY (org_id, machine_name, instance_name, node_id)
) STRICT;
