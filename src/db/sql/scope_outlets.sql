-- The outlets in territory $2's subtree (any territory when NULL; only outlet $4 when given) with
-- their tier policy, their status at the start of the local day $3 (the latest change at or before
-- it; NULL for an outlet registered later) and the child of $2 they lie under (NULL for outlets of
-- $2 itself).
WITH start AS (
    SELECT ($3::date::timestamp AT TIME ZONE o.timezone) AS at FROM orgs o WHERE o.id = $1
)
SELECT o.id, o.code, o.name, o.tier, o.channel_type, o.status, ST_Y(o.location) AS lat, ST_X(o.location) AS lon,
       t.path[array_position(t.path, $2::bigint) + 1] AS child_id,
       tp.required_visits, tp.cycle_days, tp.min_dwell_s,
       (SELECT c.status FROM outlet_status_changes c
         WHERE c.org_id = o.org_id AND c.outlet_id = o.id AND c.changed_at <= s.at
         ORDER BY c.changed_at DESC LIMIT 1) AS status_at_start
  FROM outlets o
  CROSS JOIN start s
  LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
 WHERE o.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint]) AND ($4::bigint IS NULL OR o.id = $4)
 ORDER BY o.id
