-- A plan is revised in place from a day on: the items in force are retired from that day (they
-- keep their planned visits of earlier days, so past compliance does not change) and the new items
-- are planned from that day. Materialisation plans an item only within [planned_from, retired_from).
ALTER TABLE plan_items ADD COLUMN planned_from date, ADD COLUMN retired_from date,
    ADD CONSTRAINT plan_items_revision_order CHECK (planned_from IS NULL OR retired_from IS NULL OR retired_from >= planned_from);
