-- 0009: the leases that have run out, found without reading every lease. Ending a node's lease on
-- an instance also removes every lease that ran out (service-leases.ts, each time an instance's
-- services stop), and without this index that read the whole table: 16 ms on PostgreSQL with
-- 50,000 leases, on every instance whose services stopped.
CREATE INDEX service_leases_by_until ON service_leases (until);
