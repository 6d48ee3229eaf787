-- Outlet $2 where it stood at $3: the location row valid then, else the latest one (a check-in
-- before the outlet was recorded), with its radius or its tier's default.
SELECT l.outlet_id AS id, ST_Y(l.location) AS lat, ST_X(l.location) AS lon,
       ST_AsGeoJSON(l.footprint)::jsonb AS footprint,
       coalesce(l.radius_m, tp.default_radius_m) AS radius_m, tp.min_dwell_s, l.valid_from, l.valid_to
  FROM outlet_locations l
  JOIN outlets o ON o.org_id = l.org_id AND o.id = l.outlet_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
 WHERE l.org_id = $1 AND l.outlet_id = $2
 ORDER BY (l.valid_from <= $3 AND (l.valid_to IS NULL OR l.valid_to > $3)) DESC, l.valid_from DESC
 LIMIT 1
