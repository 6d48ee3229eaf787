-- Outlets that may have been visited on a rep-day [$5, $6): each with its location history row
-- valid at the start of the day (or, for an outlet registered later, its first one: it stood there
-- before the org recorded it), not closed at the start of the day, within radius + accuracy cap
-- of one of the day's positions (to the point or to the footprint).
-- Index filter first: the box of the positions grown by the widest reach an outlet can have
-- (radius 5 km, accuracy cap, footprint up to 2 km from its point).
WITH track AS (
    SELECT ST_Collect(ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326)) AS g
      FROM UNNEST($2::float8[], $3::float8[]) AS t(lon, lat)
), reach AS (
    SELECT g, g::geography AS geog,
           (5000 + 2000 + $4) / 111000.0 AS dy,
           (5000 + 2000 + $4) / 111000.0 / greatest(cos(radians(greatest(abs(ST_YMin(g)), abs(ST_YMax(g))))), 0.01) AS dx
      FROM track
), located AS (
    SELECT DISTINCT ON (l.outlet_id) l.outlet_id, l.location, l.footprint, l.radius_m
      FROM reach r
      JOIN outlet_locations l ON l.org_id = $1 AND l.location && ST_Expand(ST_Envelope(r.g), r.dx, r.dy)
     WHERE (l.valid_to IS NULL OR l.valid_to > $5)
       -- The row valid at the start of the day (or the first one): not a later row of an outlet
       -- that stood elsewhere (outside the box) that day.
       AND NOT EXISTS (SELECT 1 FROM outlet_locations e
                        WHERE e.org_id = l.org_id AND e.outlet_id = l.outlet_id AND e.valid_from < l.valid_from
                          AND (e.valid_to IS NULL OR e.valid_to > $5))
     ORDER BY l.outlet_id, l.valid_from
)
SELECT l.outlet_id AS id, ST_Y(l.location) AS lat, ST_X(l.location) AS lon,
       ST_AsGeoJSON(l.footprint)::jsonb AS footprint,
       coalesce(l.radius_m, tp.default_radius_m) AS radius_m, tp.min_dwell_s
  FROM located l
  CROSS JOIN reach r
  JOIN outlets o ON o.org_id = $1 AND o.id = l.outlet_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
 WHERE (ST_DWithin(l.location::geography, r.geog, coalesce(l.radius_m, tp.default_radius_m) + $4)
        OR (l.footprint IS NOT NULL
            AND ST_DWithin(l.footprint::geography, r.geog, coalesce(l.radius_m, tp.default_radius_m) + $4)))
   AND coalesce((SELECT c.status FROM outlet_status_changes c
                  WHERE c.org_id = $1 AND c.outlet_id = l.outlet_id AND c.changed_at <= $5
                  ORDER BY c.changed_at DESC LIMIT 1), 'active') <> 'closed'
 ORDER BY l.outlet_id
