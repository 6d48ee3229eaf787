-- Two writers creating the same day's partition at once: the second one's to_regclass could still
-- see the relation as missing after waiting for the lock (catalog cache not refreshed by an
-- advisory lock) and fail with "relation already exists". IF NOT EXISTS settles it under the lock.
CREATE OR REPLACE FUNCTION ensure_ping_partition(day date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    part text := format('pings_%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('fieldvisit.ping_partition'), hashtext(part));
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)', part,
                       (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
    END IF;
    RETURN part;
END $$;
