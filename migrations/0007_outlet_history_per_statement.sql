-- Outlet location and status history, kept by statement-level triggers with transition tables
-- instead of one PL/pgSQL call per row: a 100k-row import writes its history in two set-based
-- statements. Behaviour is that of 0001 with one fix: a re-pin is detected with exact geometry
-- equality (`IS DISTINCT FROM`, PostGIS `=`), not bounding-box equality (`~=`), so a move smaller
-- than the float4 box rounding is kept in the history too.
--
-- INSERT ... ON CONFLICT DO UPDATE fires both triggers: the inserted rows reach the INSERT one, the
-- updated rows the UPDATE one.

DROP TRIGGER outlets_history ON outlets;
DROP FUNCTION outlets_keep_history();

CREATE FUNCTION outlets_history_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    INSERT INTO outlet_locations (org_id, outlet_id, valid_from, location, footprint, radius_m)
    SELECT n.org_id, n.id, at, n.location, n.footprint, n.radius_m FROM new_outlets n;
    INSERT INTO outlet_status_changes (org_id, outlet_id, changed_at, status)
    SELECT n.org_id, n.id, at, n.status FROM new_outlets n;
    RETURN NULL;
END $$;

CREATE FUNCTION outlets_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    UPDATE outlet_locations l
       SET valid_to = at
      FROM new_outlets n
      JOIN old_outlets o ON o.org_id = n.org_id AND o.id = n.id
     WHERE l.org_id = n.org_id AND l.outlet_id = n.id AND l.valid_to IS NULL
       AND (n.location IS DISTINCT FROM o.location
            OR n.footprint IS DISTINCT FROM o.footprint
            OR n.radius_m IS DISTINCT FROM o.radius_m);
    INSERT INTO outlet_locations (org_id, outlet_id, valid_from, location, footprint, radius_m)
    SELECT n.org_id, n.id, at, n.location, n.footprint, n.radius_m
      FROM new_outlets n
      JOIN old_outlets o ON o.org_id = n.org_id AND o.id = n.id
     WHERE n.location IS DISTINCT FROM o.location
        OR n.footprint IS DISTINCT FROM o.footprint
        OR n.radius_m IS DISTINCT FROM o.radius_m;
    INSERT INTO outlet_status_changes (org_id, outlet_id, changed_at, status)
    SELECT n.org_id, n.id, at, n.status
      FROM new_outlets n
      JOIN old_outlets o ON o.org_id = n.org_id AND o.id = n.id
     WHERE n.status IS DISTINCT FROM o.status;
    RETURN NULL;
END $$;

CREATE TRIGGER outlets_history_ins AFTER INSERT ON outlets
    REFERENCING NEW TABLE AS new_outlets
    FOR EACH STATEMENT EXECUTE FUNCTION outlets_history_insert();
CREATE TRIGGER outlets_history_upd AFTER UPDATE ON outlets
    REFERENCING OLD TABLE AS old_outlets NEW TABLE AS new_outlets
    FOR EACH STATEMENT EXECUTE FUNCTION outlets_history_update();
