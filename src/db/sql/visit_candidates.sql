-- Outlets that rep $2 may have visited on a rep-day [$5, $6): every outlet whose geofence (radius
-- of the location row valid that day, else its tier's default) plus $4 (the accuracy cap) reaches
-- one of the boxes that hold the rep's fixes (their extent per cell of $3 degrees), and
-- possibly a few more (the domain rules judge the distance exactly). Each comes once per location
-- history row that held during the day, with its validity (the outlet's first row also holds for
-- the $7 days before the org recorded the outlet), and only when it was not closed at the start
-- of the day.
-- Index first: one GiST probe per box, widened by the org's widest geofence ever; boxes near the
-- antimeridian are probed a second time shifted by 360 degrees, and above 85 degrees of latitude a
-- box spans every longitude. Then the box of each outlet's own geofence.
WITH track AS (
    SELECT min(p.lon) AS x0, min(p.lat) AS y0, max(p.lon) AS x1, max(p.lat) AS y1
      FROM pings p
     WHERE p.org_id = $1 AND p.fix_time >= $5 AND p.fix_time < $6
       AND p.device_id IN (SELECT id FROM devices WHERE org_id = $1 AND rep_id = $2)
     GROUP BY floor(p.lon / $3), floor(p.lat / $3)
), reach AS MATERIALIZED (
    SELECT greatest(coalesce((SELECT max(radius_m) FROM outlet_locations WHERE org_id = $1 AND radius_m IS NOT NULL), 0),
                    coalesce((SELECT max(default_radius_m) FROM tier_policies WHERE org_id = $1), 0))
           + $4 AS m
), boxes AS (
    SELECT ST_MakeEnvelope(b.x0 + shift, b.y0, b.x1 + shift, b.y1, 4326) AS g,
           r.m / 110000.0 AS dy,
           -- Degrees of longitude per degree of latitude (erring wide); NULL above 85 degrees,
           -- where a box spans every longitude.
           CASE WHEN greatest(abs(b.y0), abs(b.y1)) <= 85
                THEN 1 / cos(radians(greatest(abs(b.y0), abs(b.y1)) + r.m / 110000.0)) END AS kx
      FROM track b
      CROSS JOIN reach r
      CROSS JOIN LATERAL (VALUES (0.0), (CASE WHEN b.x0 + b.x1 > 0 THEN -360.0 ELSE 360.0 END)) AS s(shift)
     WHERE shift = 0
        OR greatest(abs(b.x0), abs(b.x1)) + r.m / 110000.0 / cos(radians(least(greatest(abs(b.y0), abs(b.y1)) + 1, 89))) > 179.0
), near AS (
    -- The index box of the widest geofence, then the box of the outlet's own geofence (a box
    -- holds the circle: still a superset, without a geodesic distance per pair). The tier's
    -- default radius is looked up only for location rows without their own.
    SELECT DISTINCT l.outlet_id
      FROM boxes b
      JOIN outlet_locations l ON l.org_id = $1
       AND (l.location && ST_Expand(b.g, coalesce(b.dy * b.kx, 360), b.dy)
            OR l.footprint && ST_Expand(b.g, coalesce(b.dy * b.kx, 360), b.dy))
      CROSS JOIN LATERAL (
          SELECT (coalesce(l.radius_m,
                           (SELECT tp.default_radius_m
                              FROM outlets o JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
                             WHERE o.org_id = l.org_id AND o.id = l.outlet_id)) + $4) / 110000.0 AS deg) own
     WHERE (l.valid_to IS NULL OR l.valid_to > $5)
       AND (l.location && ST_Expand(b.g, coalesce(own.deg * b.kx, 360), own.deg)
            OR l.footprint && ST_Expand(b.g, coalesce(own.deg * b.kx, 360), own.deg))
), located AS (
    -- Every location row of those outlets that held during the day; the outlet's first row also
    -- holds for the $7 days before it was recorded.
    SELECT l.outlet_id, l.location, l.footprint, l.radius_m, since.t AS valid_from, l.valid_to
      FROM outlet_locations l
      CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM outlet_locations e
                                              WHERE e.org_id = l.org_id AND e.outlet_id = l.outlet_id
                                                AND e.valid_from < l.valid_from) AS is) first
      CROSS JOIN LATERAL (SELECT CASE WHEN first.is THEN l.valid_from - make_interval(days => $7)
                                      ELSE l.valid_from END AS t) since
     WHERE l.org_id = $1 AND l.outlet_id IN (SELECT outlet_id FROM near)
       AND (l.valid_to IS NULL OR l.valid_to > $5)
       AND since.t < $6
)
SELECT l.outlet_id AS id, ST_Y(l.location) AS lat, ST_X(l.location) AS lon,
       ST_AsGeoJSON(l.footprint)::jsonb AS footprint,
       coalesce(l.radius_m, tp.default_radius_m) AS radius_m, tp.min_dwell_s, l.valid_from, l.valid_to
  FROM located l
  JOIN outlets o ON o.org_id = $1 AND o.id = l.outlet_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
 WHERE $6::timestamptz > $5
   AND coalesce((SELECT c.status FROM outlet_status_changes c
                  WHERE c.org_id = $1 AND c.outlet_id = l.outlet_id AND c.changed_at <= $5
                  ORDER BY c.changed_at DESC LIMIT 1), 'active') <> 'closed'
 ORDER BY l.outlet_id, l.valid_from NULLS FIRST
