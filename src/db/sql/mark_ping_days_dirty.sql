-- The rep-days (in the org's time zone) of newly stored pings, marked dirty for visit derivation.
INSERT INTO rep_day_dirty (org_id, rep_id, day, reason)
SELECT DISTINCT t.org_id, d.rep_id, (t.fix_time AT TIME ZONE o.timezone)::date, 'pings'
  FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[]) AS t(org_id, device_id, fix_time)
  JOIN devices d ON d.org_id = t.org_id AND d.id = t.device_id
  JOIN orgs o ON o.id = t.org_id
 -- One lock order for every writer (no deadlock between two batches of the same rep-days).
 ORDER BY 1, 2, 3
-- An unclaimed row is only locked, not rewritten (migration 0008 has the protocol).
ON CONFLICT (org_id, rep_id, day) DO UPDATE SET claimed_at = NULL, marked_at = now(), reason = EXCLUDED.reason
 WHERE rep_day_dirty.claimed_at IS NOT NULL
