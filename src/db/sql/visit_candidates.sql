-- Outlets that may have been visited on a rep-day [$5, $6): a superset, judged exactly by the
-- domain rules. $2/$3 are the (lon, lat) of the track's cells; an outlet is a candidate when its
-- location or footprint box lies within the org's widest geofence plus $4 (the accuracy cap and the
-- cells' own size) of a cell. Each comes with its location history row valid at the start of the
-- day (or, for an outlet registered later, its first one: it stood there before the org recorded
-- it), and only when it was not closed at the start of the day.
WITH reach AS (
    SELECT (greatest(coalesce((SELECT max(radius_m) FROM outlets WHERE org_id = $1 AND radius_m IS NOT NULL), 0),
                     coalesce((SELECT max(default_radius_m) FROM tier_policies WHERE org_id = $1), 0))
            + $4) / 110000.0 AS deg
), cells AS (
    SELECT ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326) AS g,
           greatest(cos(radians(least(abs(t.lat) + 0.5, 89.0))), 0.01) AS k
      FROM UNNEST($2::float8[], $3::float8[]) AS t(lon, lat)
), near AS (
    SELECT l.outlet_id
      FROM cells c CROSS JOIN reach r
      JOIN outlet_locations l ON l.org_id = $1 AND l.location && ST_Expand(c.g, r.deg / c.k, r.deg)
    UNION
    SELECT l.outlet_id
      FROM cells c CROSS JOIN reach r
      JOIN outlet_locations l ON l.org_id = $1 AND l.footprint && ST_Expand(c.g, r.deg / c.k, r.deg)
), located AS (
    SELECT DISTINCT ON (l.outlet_id) l.outlet_id, l.location, l.footprint, l.radius_m
      FROM outlet_locations l
     WHERE l.org_id = $1 AND l.outlet_id IN (SELECT outlet_id FROM near)
       AND (l.valid_to IS NULL OR l.valid_to > $5)
       -- The row valid at the start of the day (or the first one).
       AND NOT EXISTS (SELECT 1 FROM outlet_locations e
                        WHERE e.org_id = l.org_id AND e.outlet_id = l.outlet_id AND e.valid_from < l.valid_from
                          AND (e.valid_to IS NULL OR e.valid_to > $5))
     ORDER BY l.outlet_id, l.valid_from
)
SELECT l.outlet_id AS id, ST_Y(l.location) AS lat, ST_X(l.location) AS lon,
       ST_AsGeoJSON(l.footprint)::jsonb AS footprint,
       coalesce(l.radius_m, tp.default_radius_m) AS radius_m, tp.min_dwell_s
  FROM located l
  JOIN outlets o ON o.org_id = $1 AND o.id = l.outlet_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
 WHERE $6::timestamptz > $5
   AND coalesce((SELECT c.status FROM outlet_status_changes c
                  WHERE c.org_id = $1 AND c.outlet_id = l.outlet_id AND c.changed_at <= $5
                  ORDER BY c.changed_at DESC LIMIT 1), 'active') <> 'closed'
 ORDER BY l.outlet_id
