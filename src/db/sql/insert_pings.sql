-- One ingest batch: new pings (exact duplicates of device + fix time ignored) and the rep-days
-- they touch marked dirty for visit derivation, in one statement. A ping is stored only while
-- its device is active at the credential version it was accepted with; the (device, version)
-- pairs refused come back as rows without a fix time.
WITH input AS (
    SELECT *
      FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[], $4::float8[], $5::float8[], $6::real[],
                  $7::real[], $8::real[], $9::real[], $10::real[], $11::bool[], $12::text[], $13::text[],
                  $14::int[], $15::jsonb[], $16::int[])
           AS t(org_id, device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m,
                battery_pct, mock, source, client_ping_id, flags, attributes, credential_version)
), live AS (
    -- This statement's snapshot is taken after every ping of the batch arrived: a change that
    -- committed before any of them arrived is seen.
    SELECT d.org_id, d.id, d.credential_version
      FROM devices d
     WHERE (d.org_id, d.id) IN (SELECT DISTINCT org_id, device_id FROM input) AND d.active
), accepted AS (
    SELECT i.*
      FROM input i
      JOIN live l ON l.org_id = i.org_id AND l.id = i.device_id AND l.credential_version = i.credential_version
), stored AS (
    INSERT INTO pings (org_id, device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m,
                       battery_pct, mock, source, client_ping_id, flags, attributes)
    SELECT org_id, device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m,
           battery_pct, mock, source, client_ping_id, flags, attributes
      FROM accepted
    ON CONFLICT (org_id, device_id, fix_time) DO NOTHING
    RETURNING org_id, device_id, fix_time
), dirty AS (
    INSERT INTO rep_day_dirty (org_id, rep_id, day, reason)
    SELECT DISTINCT s.org_id, d.rep_id, (s.fix_time AT TIME ZONE o.timezone)::date, 'pings'
      FROM stored s
      JOIN devices d ON d.org_id = s.org_id AND d.id = s.device_id
      JOIN orgs o ON o.id = s.org_id
     -- One lock order for every writer (no deadlock between two batches of the same rep-days).
     ORDER BY 1, 2, 3
    -- An unclaimed row is only locked, not rewritten (migration 0008 has the protocol).
    ON CONFLICT (org_id, rep_id, day) DO UPDATE SET claimed_at = NULL, marked_at = now(), reason = EXCLUDED.reason
     WHERE rep_day_dirty.claimed_at IS NOT NULL
)
SELECT org_id, device_id, fix_time, NULL::int AS credential_version FROM stored
UNION ALL
SELECT DISTINCT i.org_id, i.device_id, NULL::timestamptz, i.credential_version
  FROM input i
 WHERE NOT EXISTS (SELECT 1 FROM accepted a WHERE a.org_id = i.org_id AND a.device_id = i.device_id
                                              AND a.credential_version = i.credential_version)
