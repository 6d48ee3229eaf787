-- The fixes of local day $3 of the reps in territory $2's subtree (the org's when NULL; only rep
-- $4 when given), by rep and fix time, each with the org-local day.
SELECT d.rep_id, u.login AS rep_login, p.fix_time, p.lat, p.lon, p.flags
  FROM pings p
  JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
  JOIN users u ON u.org_id = d.org_id AND u.id = d.rep_id
  LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
  JOIN orgs g ON g.id = p.org_id
 WHERE p.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint]) AND ($4::bigint IS NULL OR d.rep_id = $4)
   AND p.fix_time >= ($3::date::timestamp AT TIME ZONE g.timezone)
   AND p.fix_time < (($3::date + 1)::timestamp AT TIME ZONE g.timezone)
 ORDER BY d.rep_id, p.fix_time, p.device_id
