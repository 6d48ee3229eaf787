-- The outlets of territory $2's subtree (the org's when NULL) registered by the end of the local
-- day $4, optionally only those whose location lies in the box $5..$8 (min lon, min lat, max lon,
-- max lat; min lon > max lon crosses the antimeridian), of tier $9, of channel type $10 or with an
-- id in $11; each with its tier policy, its status at the end of $4 (at the start of the next
-- day), the local day of its last counted visit up to $4 (at most $12 days back) and its counted
-- visits in [$3, $4]; by id, at most $13 rows.
WITH bounds AS (
    SELECT (($4::date + 1)::timestamp AT TIME ZONE o.timezone) AS end_at FROM orgs o WHERE o.id = $1
)
SELECT o.id, o.code, o.name, o.tier, o.channel_type, ST_Y(o.location) AS lat, ST_X(o.location) AS lon,
       tp.required_visits, tp.cycle_days, tp.min_dwell_s, s.status AS status_at_end,
       lv.rep_day AS last_valid_visit,
       CASE WHEN lv.rep_day >= $3 THEN
           (SELECT count(*) FROM visits v
             WHERE v.org_id = o.org_id AND v.outlet_id = o.id AND v.counted AND v.rep_day BETWEEN $3 AND $4)
       ELSE 0 END AS valid_visits
  FROM outlets o
  CROSS JOIN bounds b
  LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
  JOIN LATERAL (
       SELECT c.status FROM outlet_status_changes c
        WHERE c.org_id = o.org_id AND c.outlet_id = o.id AND c.changed_at <= b.end_at
        ORDER BY c.changed_at DESC LIMIT 1) s ON true
  LEFT JOIN LATERAL (
       SELECT v.rep_day FROM visits v
        WHERE v.org_id = o.org_id AND v.outlet_id = o.id AND v.counted AND v.rep_day BETWEEN $4 - $12 + 1 AND $4
        ORDER BY v.rep_day DESC LIMIT 1) lv ON true
 WHERE o.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint])
   AND ($5::float8 IS NULL
        OR o.location && ST_MakeEnvelope($5, $6, CASE WHEN $5 <= $7 THEN $7 ELSE 180 END, $8, 4326)
        OR ($5 > $7 AND o.location && ST_MakeEnvelope(-180, $6, $7, $8, 4326)))
   -- The index compares float4 boxes: decide on the exact coordinates, edges included.
   AND ($5::float8 IS NULL
        OR (ST_Y(o.location) BETWEEN $6 AND $8
            AND (CASE WHEN $5 <= $7 THEN ST_X(o.location) BETWEEN $5 AND $7
                      ELSE ST_X(o.location) >= $5 OR ST_X(o.location) <= $7 END)))
   AND ($9::text IS NULL OR o.tier = $9) AND ($10::text IS NULL OR o.channel_type = $10)
   AND ($11::bigint[] IS NULL OR o.id = ANY($11))
 ORDER BY o.id
 LIMIT $13
