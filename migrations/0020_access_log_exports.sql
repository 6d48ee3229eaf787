-- Downloading an export's files is a read of the location data in them (visit positions, day
-- tracks): it goes into the access log too.
ALTER TABLE access_log DROP CONSTRAINT access_log_what_known;
ALTER TABLE access_log ADD CONSTRAINT access_log_what_known
    CHECK (what IN ('pings', 'track', 'live_positions', 'live_stream', 'tracks_layer', 'export'));
