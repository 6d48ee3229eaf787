-- Whether a visit counts for compliance and coverage, kept on the visit row: `review` is its
-- latest accept/reject decision (maintained from visit_reviews by trigger) and `counted` is the
-- one SQL definition of a valid visit (an accepted review counts, a rejected one does not, else a
-- `verified` verdict counts), the same rule as `DayVisit::is_valid`. Coverage, statuses and map
-- layers read counted visits through a partial index instead of a lateral lookup per visit.
ALTER TABLE visits ADD COLUMN review text CONSTRAINT visits_review_known CHECK (review IN ('accepted', 'rejected'));
ALTER TABLE visits ADD COLUMN counted boolean NOT NULL GENERATED ALWAYS AS (
    CASE review WHEN 'accepted' THEN true WHEN 'rejected' THEN false ELSE verdict = 'verified' END) STORED;

UPDATE visits v SET review = r.decision
  FROM (SELECT DISTINCT ON (org_id, visit_id) org_id, visit_id, decision
          FROM visit_reviews
         WHERE visit_id IS NOT NULL AND decision IN ('accepted', 'rejected')
         ORDER BY org_id, visit_id, created_at DESC, id DESC) r
 WHERE v.org_id = r.org_id AND v.id = r.visit_id;

-- A review written or attached to a (recomputed) visit sets that visit's latest decision.
CREATE FUNCTION visits_sync_review() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE visits v
       SET review = (SELECT r.decision FROM visit_reviews r
                      WHERE r.org_id = NEW.org_id AND r.visit_id = NEW.visit_id
                        AND r.decision IN ('accepted', 'rejected')
                      ORDER BY r.created_at DESC, r.id DESC LIMIT 1)
     WHERE v.org_id = NEW.org_id AND v.id = NEW.visit_id;
    RETURN NULL;
END $$;

CREATE TRIGGER visit_reviews_sync_visit
    AFTER INSERT OR UPDATE OF visit_id, decision ON visit_reviews
    FOR EACH ROW WHEN (NEW.visit_id IS NOT NULL) EXECUTE FUNCTION visits_sync_review();

-- Counted visits of an outlet by day: an outlet's last valid visit is one index probe.
CREATE INDEX visits_counted_idx ON visits (org_id, outlet_id, rep_day) INCLUDE (dwell_s) WHERE counted;

-- Which outlets' visits changed, for the servers' in-memory visit ledgers (`src/index/ledger.rs`):
-- every statement on visits logs the outlets it touched with its transaction id. A ledger reads
-- the rows with xid at or above the xmin of its last read's snapshot (every transaction below it
-- had ended then), so no commit is missed whatever the commit order. Rows older than a day are
-- pruned; a ledger that has not read for longer than that reloads whole.
CREATE TABLE visit_outlet_changes (
    org_id      bigint NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    outlet_id   bigint NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visit_outlet_changes_xid_idx ON visit_outlet_changes (org_id, xid);
CREATE INDEX visit_outlet_changes_time_idx ON visit_outlet_changes (changed_at);

CREATE FUNCTION visits_log_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO visit_outlet_changes (org_id, outlet_id) SELECT DISTINCT org_id, outlet_id FROM new_visits;
    RETURN NULL;
END $$;
CREATE FUNCTION visits_log_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO visit_outlet_changes (org_id, outlet_id) SELECT DISTINCT org_id, outlet_id FROM old_visits;
    RETURN NULL;
END $$;
CREATE FUNCTION visits_log_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO visit_outlet_changes (org_id, outlet_id)
    SELECT org_id, outlet_id FROM new_visits UNION SELECT org_id, outlet_id FROM old_visits;
    RETURN NULL;
END $$;
CREATE TRIGGER visits_log_insert AFTER INSERT ON visits
    REFERENCING NEW TABLE AS new_visits FOR EACH STATEMENT EXECUTE FUNCTION visits_log_inserted();
CREATE TRIGGER visits_log_delete AFTER DELETE ON visits
    REFERENCING OLD TABLE AS old_visits FOR EACH STATEMENT EXECUTE FUNCTION visits_log_deleted();
CREATE TRIGGER visits_log_update AFTER UPDATE ON visits
    REFERENCING OLD TABLE AS old_visits NEW TABLE AS new_visits FOR EACH STATEMENT EXECUTE FUNCTION visits_log_updated();
