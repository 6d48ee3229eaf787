-- Visits with rep-day in [$3, $4] of the reps in territory $2's subtree at outlets in it (the
-- org's when NULL),
-- optionally of one verdict ($5) and one rep ($6), whose position lies in the box $7..$10
-- (min lon, min lat, max lon, max lat; NULL = anywhere; min lon > max lon crosses the
-- antimeridian), each with its outlet's code and its latest accept/reject review; by id, at most
-- $11 rows.
SELECT v.id, v.rep_id, u.login AS rep_login, v.outlet_id, o.code AS outlet_code, v.rep_day, v.arrival,
       v.departure, v.dwell_s, v.verdict, v.risk_score, ST_Y(v.location) AS lat, ST_X(v.location) AS lon,
       v.review
  FROM visits v
  JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
  LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
  JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id
  LEFT JOIN territories ot ON ot.org_id = o.org_id AND ot.id = o.territory_id
 WHERE v.org_id = $1 AND ($2::bigint IS NULL OR (t.path @> ARRAY[$2::bigint] AND ot.path @> ARRAY[$2::bigint]))
   AND v.rep_day BETWEEN $3 AND $4
   AND ($5::text IS NULL OR v.verdict = $5) AND ($6::bigint IS NULL OR v.rep_id = $6)
   -- Box operators, so that the GiST index on visits.location can serve them.
   AND ($7::float8 IS NULL
        OR v.location && ST_MakeEnvelope($7, $8, CASE WHEN $7 <= $9 THEN $9 ELSE 180 END, $10, 4326)
        OR ($7 > $9 AND v.location && ST_MakeEnvelope(-180, $8, $9, $10, 4326)))
 ORDER BY v.id
 LIMIT $11
