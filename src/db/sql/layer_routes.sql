-- The planned visits of local day $3 of the reps in territory $2's subtree at outlets in it (the
-- org's when NULL; only rep $4 when given), with their outlets' positions, by rep and route order.
SELECT pv.rep_id, u.login AS rep_login, pv.id AS planned_visit_id, pv.seq, pv.outlet_id, o.code AS outlet_code,
       ST_Y(o.location) AS lat, ST_X(o.location) AS lon
  FROM planned_visits pv
  JOIN users u ON u.org_id = pv.org_id AND u.id = pv.rep_id
  LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
  JOIN outlets o ON o.org_id = pv.org_id AND o.id = pv.outlet_id
  LEFT JOIN territories ot ON ot.org_id = o.org_id AND ot.id = o.territory_id
 WHERE pv.org_id = $1 AND ($2::bigint IS NULL OR (t.path @> ARRAY[$2::bigint] AND ot.path @> ARRAY[$2::bigint])) AND ($4::bigint IS NULL OR pv.rep_id = $4)
   AND pv.visit_date = $3
 ORDER BY pv.rep_id, pv.seq, pv.id
