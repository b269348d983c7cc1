-- 0008: each timer names its instance's org, so that due timers can be claimed org by org: one
-- org's backlog of due timers must not hold back another org's (see fair-timer-claims.ts). A
-- trigger fills it in from the instance, so every writer of timers (a node not yet upgraded, in a
-- cluster upgraded node by node, too) leaves it right; those already armed get it here.
ALTER TABLE timers ADD COLUMN org_id TEXT COLLATE "C";
UPDATE timers t SET org_id = i.org_id FROM instances i WHERE i.id = t.instance_id;
ALTER TABLE timers ALTER COLUMN org_id SET NOT NULL;
CREATE FUNCTION timers_org_of_instance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT i.org_id INTO NEW.org_id FROM instances i WHERE i.id = NEW.instance_id;
  RETURN NEW;
END
$$;
CREATE TRIGGER timers_org_of_instance BEFORE INSERT ON timers
  FOR EACH ROW EXECUTE FUNCTION timers_org_of_instance();
-- With id too: an org's line (ORDER BY due_at, id) is read straight off the index.
CREATE INDEX timers_by_org_due_at ON timers (org_id, due_at, id);
