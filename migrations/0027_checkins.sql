-- Check-ins from the reps' app: the rep says "I am at this outlet" with a fix of the phone. The
-- server judges the fix at once ("at the outlet" by the visit rule) and keeps it; a derived visit
-- confirms it later, else it stays an unconfirmed claim for a supervisor. `client_id` is the
-- app's own id of the check-in: a retried request (also after a lost answer) finds the same row.
CREATE TABLE checkins (
    org_id          bigint NOT NULL,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    device_id       bigint NOT NULL,
    rep_id          bigint NOT NULL,
    outlet_id       bigint NOT NULL,
    client_id       text NOT NULL CONSTRAINT checkins_client_id_format
                    CHECK (length(client_id) BETWEEN 8 AND 100 AND client_id ~ '^[A-Za-z0-9_.:-]+$'),
    checked_in_at   timestamptz NOT NULL,
    lat             double precision NOT NULL CONSTRAINT checkins_lat_range CHECK (lat BETWEEN -90 AND 90),
    lon             double precision NOT NULL CONSTRAINT checkins_lon_range CHECK (lon BETWEEN -180 AND 180),
    accuracy_m      real CONSTRAINT checkins_accuracy_positive CHECK (accuracy_m IS NULL OR accuracy_m > 0),
    -- The server's judgement of the check-in fix when it arrived.
    distance_m      double precision NOT NULL,
    allowance_m     double precision NOT NULL,
    at_outlet       boolean NOT NULL,
    checked_out_at  timestamptz,
    out_lat         double precision CONSTRAINT checkins_out_lat_range CHECK (out_lat IS NULL OR out_lat BETWEEN -90 AND 90),
    out_lon         double precision CONSTRAINT checkins_out_lon_range CHECK (out_lon IS NULL OR out_lon BETWEEN -180 AND 180),
    out_accuracy_m  real CONSTRAINT checkins_out_accuracy_positive CHECK (out_accuracy_m IS NULL OR out_accuracy_m > 0),
    received_at     timestamptz NOT NULL DEFAULT now(),
    -- A supervisor's decision on an unconfirmed check-in (a claim). An accepted claim also writes
    -- an accepted visit review at the check-in's outlet and time, and derivation adds a visit
    -- for it (verdict `unverified`, counted through the review).
    claim_decision  text CONSTRAINT checkins_claim_decision_known CHECK (claim_decision IN ('accepted', 'rejected')),
    claim_reviewer_id bigint,
    claim_reason    text,
    claim_reviewed_at timestamptz,
    PRIMARY KEY (org_id, id),
    CONSTRAINT checkins_client_key UNIQUE (org_id, device_id, client_id),
    CONSTRAINT checkins_out_after_in CHECK (checked_out_at IS NULL OR checked_out_at >= checked_in_at),
    CONSTRAINT checkins_device_fkey FOREIGN KEY (org_id, device_id) REFERENCES devices (org_id, id),
    CONSTRAINT checkins_rep_fkey FOREIGN KEY (org_id, rep_id) REFERENCES users (org_id, id),
    CONSTRAINT checkins_outlet_fkey FOREIGN KEY (org_id, outlet_id) REFERENCES outlets (org_id, id),
    CONSTRAINT checkins_claim_reviewer_fkey FOREIGN KEY (org_id, claim_reviewer_id) REFERENCES users (org_id, id),
    CONSTRAINT checkins_claim_reviewed CHECK ((claim_decision IS NULL) = (claim_reviewer_id IS NULL))
);
CREATE INDEX checkins_rep_time ON checkins (org_id, rep_id, checked_in_at);
