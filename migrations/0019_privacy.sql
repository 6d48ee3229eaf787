-- Employee privacy: who read whose location, and raw-ping retention.

-- Every read of a rep's track, raw pings or live position by someone other than the rep: who,
-- whose, when, what. Append-only, like the audit log; auditors read it.
CREATE TABLE access_log (
    org_id          bigint NOT NULL REFERENCES orgs (id),
    id              bigint GENERATED ALWAYS AS IDENTITY,
    at              timestamptz NOT NULL DEFAULT now(),
    reader_user_id  bigint NOT NULL,
    subject_rep_id  bigint NOT NULL,
    what            text NOT NULL CONSTRAINT access_log_what_known
                    CHECK (what IN ('pings', 'track', 'live_positions', 'live_stream', 'tracks_layer')),
    detail          jsonb NOT NULL DEFAULT '{}',
    request_id      text,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX access_log_subject_idx ON access_log (org_id, subject_rep_id, at);
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only';
END $$;
CREATE TRIGGER access_log_no_change BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();

-- Local days before this one have had their raw pings removed by the retention job: their
-- visits are final, so no rep-day before it is marked for derivation again (which would derive
-- it from the few pings left, or none, and replace its visits).
ALTER TABLE orgs ADD COLUMN pings_kept_from date;

CREATE FUNCTION rep_day_dirty_skip_retired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM orgs WHERE id = NEW.org_id AND NEW.day < pings_kept_from) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER rep_day_dirty_retired BEFORE INSERT ON rep_day_dirty
    FOR EACH ROW EXECUTE FUNCTION rep_day_dirty_skip_retired();
