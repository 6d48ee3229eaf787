-- Outlets that may have been visited on a rep-day [$5, $6): every outlet within its geofence
-- (radius of the location row valid that day, else its tier's default) plus $4 (the accuracy cap
-- and how far a fix may lie from its cell) of one of the track's cells ($2/$3 = lon/lat), and
-- possibly a few more (the domain rules judge the distance exactly). Each comes with its location
-- history row valid at the start of the day (or, for an outlet registered later, its first one:
-- it stood there before the org recorded it), and only when it was not closed at the start of the
-- day.
-- Index first: one GiST probe per cell with a box of the org's widest geofence ever; cells near
-- the antimeridian are probed a second time shifted by 360 degrees, and above 85 degrees of
-- latitude a box spans every longitude. Then the box of each outlet's own geofence.
WITH reach AS (
    SELECT greatest(coalesce((SELECT max(radius_m) FROM outlet_locations WHERE org_id = $1 AND radius_m IS NOT NULL), 0),
                    coalesce((SELECT max(default_radius_m) FROM tier_policies WHERE org_id = $1), 0))
           + $4 AS m
), cells AS (
    SELECT ST_SetSRID(ST_MakePoint(t.lon + shift, t.lat), 4326) AS g,
           r.m / 110000.0 AS dy,
           -- Degrees of longitude per degree of latitude (erring wide); NULL above 85 degrees,
           -- where a box spans every longitude.
           CASE WHEN abs(t.lat) <= 85 THEN 1 / cos(radians(abs(t.lat) + r.m / 110000.0)) END AS kx
      FROM UNNEST($2::float8[], $3::float8[]) AS t(lon, lat)
      CROSS JOIN reach r
      CROSS JOIN LATERAL (VALUES (0.0), (CASE WHEN t.lon > 0 THEN -360.0 ELSE 360.0 END)) AS s(shift)
     WHERE shift = 0 OR abs(t.lon) + r.m / 110000.0 / cos(radians(least(abs(t.lat) + 1, 89))) > 179.0
), near AS (
    -- The index box of the widest geofence, then the box of the outlet's own geofence (a box
    -- holds the circle: still a superset, without a geodesic distance per pair).
    SELECT DISTINCT l.outlet_id
      FROM cells c
      JOIN outlet_locations l ON l.org_id = $1
       AND (l.location && ST_Expand(c.g, coalesce(c.dy * c.kx, 360), c.dy)
            OR l.footprint && ST_Expand(c.g, coalesce(c.dy * c.kx, 360), c.dy))
      JOIN outlets o ON o.org_id = l.org_id AND o.id = l.outlet_id
      JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
      CROSS JOIN LATERAL (SELECT (coalesce(l.radius_m, tp.default_radius_m) + $4) / 110000.0 AS deg) own
     WHERE (l.valid_to IS NULL OR l.valid_to > $5)
       AND (l.location && ST_Expand(c.g, coalesce(own.deg * c.kx, 360), own.deg)
            OR l.footprint && ST_Expand(c.g, coalesce(own.deg * c.kx, 360), own.deg))
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
