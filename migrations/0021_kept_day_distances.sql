-- The distance a rep travelled on a local day, kept by the retention pass when it removes the
-- day's raw pings: the figure outlives the fixes it was computed from (no positions are kept).
CREATE TABLE kept_day_distances (
    org_id      bigint NOT NULL,
    rep_id      bigint NOT NULL,
    day         date NOT NULL,
    distance_m  double precision NOT NULL CONSTRAINT kept_day_distances_nonnegative CHECK (distance_m >= 0),
    fix_count   integer NOT NULL,
    kept_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, rep_id, day),
    CONSTRAINT kept_day_distances_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id)
);
