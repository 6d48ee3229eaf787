-- Outlet changes are announced on the channel `fieldvisit_outlets` so that every server instance can
-- patch its in-memory outlet index (src/index/registry.rs). Notifications are delivered at commit,
-- so listeners only ever see committed data; a rolled-back change sends nothing.
--
-- Payload: JSON text, one notification per org touched by a statement:
--   {"org_id": 7, "ids": [12, 13]}  these outlets of org 7 were inserted, changed or deleted:
--                                   re-read them (a row that is gone is removed from the index)
--   {"org_id": 7, "reload": true}   more than 250 outlets of org 7 changed in one statement (an
--                                   import): rebuild the org's index from the table
--   {"reload_all": true}            the table was truncated: rebuild every org
-- 250 ids of at most 20 characters keep a payload well under PostgreSQL's 8000-byte limit.
--
-- An UPDATE notifies only rows whose indexed columns changed (location, footprint, radius_m, status,
-- territory_id): keep this list in step with what the index keeps. Triggers are statement-level with
-- transition tables, so a bulk statement costs one set-based pass, not one call per row.

CREATE FUNCTION outlets_notify_changes(org_ids bigint[], outlet_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.org_id, array_agg(DISTINCT c.id ORDER BY c.id) AS ids
          FROM unnest(org_ids, outlet_ids) AS c (org_id, id)
         GROUP BY c.org_id
    LOOP
        IF cardinality(r.ids) > 250 THEN
            PERFORM pg_notify('fieldvisit_outlets', json_build_object('org_id', r.org_id, 'reload', true)::text);
        ELSE
            PERFORM pg_notify('fieldvisit_outlets', json_build_object('org_id', r.org_id, 'ids', r.ids)::text);
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION outlets_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outlets_notify_changes(array_agg(n.org_id), array_agg(n.id)) FROM new_outlets n;
    RETURN NULL;
END $$;

CREATE FUNCTION outlets_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outlets_notify_changes(array_agg(c.org_id), array_agg(c.id))
       FROM (SELECT coalesce(n.org_id, o.org_id) AS org_id, coalesce(n.id, o.id) AS id
               FROM new_outlets n
               FULL JOIN old_outlets o ON o.org_id = n.org_id AND o.id = n.id
              WHERE n.id IS NULL OR o.id IS NULL
                 OR n.location IS DISTINCT FROM o.location
                 OR n.footprint IS DISTINCT FROM o.footprint
                 OR n.radius_m IS DISTINCT FROM o.radius_m
                 OR n.status IS DISTINCT FROM o.status
                 OR n.territory_id IS DISTINCT FROM o.territory_id) c;
    RETURN NULL;
END $$;

CREATE FUNCTION outlets_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outlets_notify_changes(array_agg(o.org_id), array_agg(o.id)) FROM old_outlets o;
    RETURN NULL;
END $$;

CREATE FUNCTION outlets_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fieldvisit_outlets', json_build_object('reload_all', true)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER outlets_notify_ins AFTER INSERT ON outlets
    REFERENCING NEW TABLE AS new_outlets
    FOR EACH STATEMENT EXECUTE FUNCTION outlets_notify_insert();
CREATE TRIGGER outlets_notify_upd AFTER UPDATE ON outlets
    REFERENCING OLD TABLE AS old_outlets NEW TABLE AS new_outlets
    FOR EACH STATEMENT EXECUTE FUNCTION outlets_notify_update();
CREATE TRIGGER outlets_notify_del AFTER DELETE ON outlets
    REFERENCING OLD TABLE AS old_outlets
    FOR EACH STATEMENT EXECUTE FUNCTION outlets_notify_delete();
CREATE TRIGGER outlets_notify_trunc AFTER TRUNCATE ON outlets
    FOR EACH STATEMENT EXECUTE FUNCTION outlets_notify_truncate();
