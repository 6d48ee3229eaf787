-- The visits with rep-day in [$3, $4] at outlets of territory $2's subtree (of the whole org when
-- NULL), by any rep, each with its latest accept/reject review.
SELECT v.outlet_id, v.rep_day, v.id, v.arrival, v.departure, v.dwell_s, v.verdict, v.review
  FROM outlets o
  LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
  JOIN visits v ON v.org_id = o.org_id AND v.outlet_id = o.id
 WHERE o.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint]) AND v.rep_day BETWEEN $3 AND $4
 ORDER BY v.outlet_id, v.arrival, v.id
