-- A new outlet's first location also holds for some days before it was recorded
-- (`db::visits::RECORDING_GRACE_DAYS`): reps visit outlets before the office registers them (a
-- census, a new agent point), so recording an outlet can add visits to the rep-days of those days
-- with fixes near it. The history trigger queues each new outlet here; the derivation worker marks
-- those rep-days dirty and empties the queue.
CREATE TABLE outlet_additions (
    org_id     bigint NOT NULL,
    outlet_id  bigint NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, outlet_id),
    CONSTRAINT outlet_additions_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id) ON DELETE CASCADE
);

CREATE OR REPLACE FUNCTION outlets_history_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    INSERT INTO outlet_locations (org_id, outlet_id, valid_from, location, footprint, radius_m)
    SELECT n.org_id, n.id, at, n.location, n.footprint, n.radius_m FROM new_outlets n;
    INSERT INTO outlet_status_changes (org_id, outlet_id, changed_at, status)
    SELECT n.org_id, n.id, at, n.status FROM new_outlets n;
    INSERT INTO outlet_additions (org_id, outlet_id, queued_at)
    SELECT n.org_id, n.id, at FROM new_outlets n
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
