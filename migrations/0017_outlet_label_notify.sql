-- The outlet index now carries each outlet's label (code, name, tier, channel type) for map layers
-- and tiles: a change of any of them notifies the index too, as a move or a status change does.
CREATE OR REPLACE FUNCTION outlets_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
                 OR n.territory_id IS DISTINCT FROM o.territory_id
                 OR n.code IS DISTINCT FROM o.code
                 OR n.name IS DISTINCT FROM o.name
                 OR n.tier IS DISTINCT FROM o.tier
                 OR n.channel_type IS DISTINCT FROM o.channel_type) c;
    RETURN NULL;
END $$;

-- Two reviews of one visit committed at once: lock the visit first, then read the latest decision
-- in a statement of its own, whose snapshot (READ COMMITTED) sees the other review once it has
-- committed.
CREATE OR REPLACE FUNCTION visits_sync_review() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM visits v WHERE v.org_id = NEW.org_id AND v.id = NEW.visit_id FOR UPDATE;
    UPDATE visits v
       SET review = (SELECT r.decision FROM visit_reviews r
                      WHERE r.org_id = NEW.org_id AND r.visit_id = NEW.visit_id
                        AND r.decision IN ('accepted', 'rejected')
                      ORDER BY r.created_at DESC, r.id DESC LIMIT 1)
     WHERE v.org_id = NEW.org_id AND v.id = NEW.visit_id;
    RETURN NULL;
END $$;
