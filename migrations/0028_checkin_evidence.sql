-- Evidence that hangs on a check-in. The reps' app takes photos and answers checklists at an
-- outlet before any visit is derived (derivation waits for the rep's pings to settle, and weak GPS
-- indoors may never give one): such evidence is anchored to the check-in (its rep, local day,
-- outlet and check-in time as the arrival, like a visit's evidence), linked to the visit when
-- derivation finds one there, and kept, visibly unlinked, when it does not.
--
-- `client_id` is the app's own id of each photo and set of answers (the check-ins' format): a
-- retried request, also after an answer lost on a bad connection, meets the unique key and
-- stores nothing twice, even when two copies arrive at once.
ALTER TABLE photos
    ADD COLUMN checkin_id bigint,
    ADD COLUMN client_id text CONSTRAINT photos_client_id_format
        CHECK (length(client_id) BETWEEN 8 AND 100 AND client_id ~ '^[A-Za-z0-9_.:-]+$'),
    -- The app's claim of when and where it took the photo (its clock and fix at capture), kept
    -- apart from exif_*: browsers may strip GPS from camera EXIF, and the photo rules use the
    -- EXIF when present, else this claim, and say which (`findings.time_source`,
    -- `findings.position_source`).
    ADD COLUMN capture_at timestamptz,
    ADD COLUMN capture_lat double precision CONSTRAINT photos_capture_lat_range
        CHECK (capture_lat BETWEEN -90 AND 90),
    ADD COLUMN capture_lon double precision CONSTRAINT photos_capture_lon_range
        CHECK (capture_lon BETWEEN -180 AND 180),
    ADD COLUMN capture_accuracy_m real CONSTRAINT photos_capture_accuracy_positive
        CHECK (capture_accuracy_m > 0),
    ADD CONSTRAINT photos_capture_position CHECK ((capture_lat IS NULL) = (capture_lon IS NULL)),
    ADD CONSTRAINT photos_checkin_client CHECK ((checkin_id IS NULL) = (client_id IS NULL)),
    ADD CONSTRAINT photos_checkin_fkey FOREIGN KEY (org_id, checkin_id) REFERENCES checkins (org_id, id),
    -- Also the index of a check-in's photos (the check-in listing reads them by check-in).
    ADD CONSTRAINT photos_checkin_client_key UNIQUE (org_id, checkin_id, client_id);

ALTER TABLE visit_outcomes
    ADD COLUMN checkin_id bigint,
    ADD COLUMN client_id text CONSTRAINT visit_outcomes_client_id_format
        CHECK (length(client_id) BETWEEN 8 AND 100 AND client_id ~ '^[A-Za-z0-9_.:-]+$'),
    ADD CONSTRAINT visit_outcomes_checkin_client CHECK ((checkin_id IS NULL) = (client_id IS NULL)),
    ADD CONSTRAINT visit_outcomes_checkin_fkey FOREIGN KEY (org_id, checkin_id) REFERENCES checkins (org_id, id),
    ADD CONSTRAINT visit_outcomes_checkin_client_key UNIQUE (org_id, checkin_id, client_id);
