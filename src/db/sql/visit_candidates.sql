-- Outlets that the reps of a group of rep-days may have visited: for rep-day k (1-based, its
-- local day [$7[k], $8[k])) every outlet whose geofence (radius of the location row valid that
-- day, else its tier's default) plus $9 (the accuracy cap) reaches one of the boxes tagged k
-- ($2..$5: x0, y0, x1, y1; $6: k), and possibly a few more (the domain rules judge the distance
-- exactly). Each comes once per rep-day and location history row that held during the day, with
-- its validity (the outlet's first row also holds for the $10 days before the org recorded the
-- outlet), and only when it was not closed at the start of the day.
-- The boxes are the extent of the rep-day's fixes per grid cell (`domain::visit::track_boxes`),
-- computed from the fixes the worker has already read: reading the pings again here cost a
-- second read and, as a generic plan, a scan of every daily ping partition (no pruning).
-- Index first: one GiST probe per box, widened by the org's widest geofence ever; boxes near the
-- antimeridian are probed a second time shifted by 360 degrees, and above 85 degrees of latitude a
-- box spans every longitude. Then the box of each outlet's own geofence.
WITH days AS MATERIALIZED (
    SELECT d.k::int AS k, d.f, d.t
      FROM unnest($7::timestamptz[], $8::timestamptz[]) WITH ORDINALITY AS d(f, t, k)
     WHERE d.t > d.f
), track AS (
    SELECT b.x0, b.y0, b.x1, b.y1, b.k, d.f
      FROM unnest($2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::int[]) AS b(x0, y0, x1, y1, k)
      JOIN days d ON d.k = b.k
), reach AS MATERIALIZED (
    SELECT greatest(coalesce((SELECT max(radius_m) FROM outlet_locations WHERE org_id = $1 AND radius_m IS NOT NULL), 0),
                    coalesce((SELECT max(default_radius_m) FROM tier_policies WHERE org_id = $1), 0))
           + $9 AS m
), boxes AS (
    SELECT b.k, b.f, ST_MakeEnvelope(b.x0 + shift, b.y0, b.x1 + shift, b.y1, 4326) AS g,
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
    SELECT DISTINCT b.k, l.outlet_id
      FROM boxes b
      JOIN outlet_locations l ON l.org_id = $1
       AND (l.location && ST_Expand(b.g, coalesce(b.dy * b.kx, 360), b.dy)
            OR l.footprint && ST_Expand(b.g, coalesce(b.dy * b.kx, 360), b.dy))
      CROSS JOIN LATERAL (
          SELECT (coalesce(l.radius_m,
                           (SELECT tp.default_radius_m
                              FROM outlets o JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
                             WHERE o.org_id = l.org_id AND o.id = l.outlet_id)) + $9) / 110000.0 AS deg) own
     WHERE (l.valid_to IS NULL OR l.valid_to > b.f)
       AND (l.location && ST_Expand(b.g, coalesce(own.deg * b.kx, 360), own.deg)
            OR l.footprint && ST_Expand(b.g, coalesce(own.deg * b.kx, 360), own.deg))
), located AS (
    -- Every location row of those outlets that held during the day; the outlet's first row also
    -- holds for the $10 days before it was recorded.
    SELECT n.k, d.f, l.outlet_id, l.location, l.footprint, l.radius_m, since.t AS valid_from, l.valid_to
      FROM near n
      JOIN days d ON d.k = n.k
      JOIN outlet_locations l ON l.org_id = $1 AND l.outlet_id = n.outlet_id
      CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM outlet_locations e
                                              WHERE e.org_id = l.org_id AND e.outlet_id = l.outlet_id
                                                AND e.valid_from < l.valid_from) AS is) first
      CROSS JOIN LATERAL (SELECT CASE WHEN first.is THEN l.valid_from - make_interval(days => $10)
                                      ELSE l.valid_from END AS t) since
     WHERE (l.valid_to IS NULL OR l.valid_to > d.f)
       AND since.t < d.t
)
SELECT l.k, l.outlet_id AS id, ST_Y(l.location) AS lat, ST_X(l.location) AS lon,
       ST_AsGeoJSON(l.footprint)::jsonb AS footprint,
       coalesce(l.radius_m, tp.default_radius_m) AS radius_m, tp.min_dwell_s, l.valid_from, l.valid_to
  FROM located l
  JOIN outlets o ON o.org_id = $1 AND o.id = l.outlet_id
  JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
 WHERE coalesce((SELECT c.status FROM outlet_status_changes c
                  WHERE c.org_id = $1 AND c.outlet_id = l.outlet_id AND c.changed_at <= l.f
                  ORDER BY c.changed_at DESC LIMIT 1), 'active') <> 'closed'
 ORDER BY l.k, l.outlet_id, l.valid_from NULLS FIRST
