-- Takes up to $1 queued outlet additions and marks dirty the rep-days that their first location
-- can add visits to: days with fixes within the outlet's reach ($2 = the accuracy cap added to its
-- radius, around its point and its footprint) from $3 days before the day it was recorded to that
-- day. One pass over the pings per org and recording day (an import records all its outlets at
-- once), joined with the reach as 0.01-degree cells: a superset, derivation judges.
WITH batch AS (
    DELETE FROM outlet_additions a
     WHERE (a.org_id, a.outlet_id) IN (SELECT q.org_id, q.outlet_id FROM outlet_additions q
                                        ORDER BY q.queued_at, q.org_id, q.outlet_id
                                        LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING a.org_id, a.outlet_id
), first AS (
    -- Each outlet's first location, when it was recorded, and how far its geofence reaches (degrees).
    SELECT DISTINCT ON (l.org_id, l.outlet_id)
           l.org_id, l.valid_from,
           CASE WHEN l.footprint IS NULL THEN l.location ELSE ST_Collect(l.location, l.footprint) END AS g,
           (coalesce(l.radius_m, tp.default_radius_m, 0) + $2) / 110000.0 AS dy
      FROM batch b
      JOIN outlet_locations l ON l.org_id = b.org_id AND l.outlet_id = b.outlet_id
      JOIN outlets o ON o.org_id = l.org_id AND o.id = l.outlet_id
      LEFT JOIN tier_policies tp ON tp.org_id = o.org_id AND tp.tier = o.tier
     ORDER BY l.org_id, l.outlet_id, l.valid_from
), reach AS (
    -- The box of the geofence; degrees of longitude widened for the latitude (every longitude
    -- near the poles).
    SELECT f.org_id, f.valid_from,
           ST_Expand(f.g,
                     CASE WHEN greatest(abs(ST_YMin(f.g)), abs(ST_YMax(f.g))) + f.dy < 85
                          THEN f.dy / cos(radians(greatest(abs(ST_YMin(f.g)), abs(ST_YMax(f.g))) + f.dy))
                          ELSE 360 END,
                     f.dy) AS box
      FROM first f
), cells AS (
    -- The box's cells; longitudes beyond +-180 wrap around the antimeridian.
    SELECT r.org_id, (r.valid_from AT TIME ZONE o.timezone)::date AS recorded,
           ((cx + 18000) % 36000 + 36000) % 36000 - 18000 AS cx, cy
      FROM reach r
      JOIN orgs o ON o.id = r.org_id
      CROSS JOIN LATERAL (SELECT ST_XMax(r.box) - ST_XMin(r.box) >= 360 AS whole) w
      CROSS JOIN LATERAL generate_series(CASE WHEN w.whole THEN -18000 ELSE floor(ST_XMin(r.box) * 100)::int END,
                                         CASE WHEN w.whole THEN 17999 ELSE floor(ST_XMax(r.box) * 100)::int END) AS cx
      CROSS JOIN LATERAL generate_series(floor(greatest(ST_YMin(r.box), -90) * 100)::int,
                                         floor(least(ST_YMax(r.box), 90) * 100)::int) AS cy
), windows AS (
    SELECT DISTINCT org_id, recorded FROM cells
), fixes AS (
    SELECT DISTINCT w.org_id, w.recorded, p.device_id,
           ((floor(p.lon * 100)::int + 18000) % 36000 + 36000) % 36000 - 18000 AS cx, floor(p.lat * 100)::int AS cy,
           (p.fix_time AT TIME ZONE o.timezone)::date AS day
      FROM windows w
      JOIN orgs o ON o.id = w.org_id
      JOIN pings p ON p.org_id = w.org_id
       AND p.fix_time >= ((w.recorded - $3)::timestamp AT TIME ZONE o.timezone)
       AND p.fix_time < ((w.recorded + 1)::timestamp AT TIME ZONE o.timezone)
)
INSERT INTO rep_day_dirty (org_id, rep_id, day, reason)
SELECT DISTINCT f.org_id, d.rep_id, f.day, 'outlet_added'
  FROM fixes f
  JOIN cells c ON c.org_id = f.org_id AND c.recorded = f.recorded AND c.cx = f.cx AND c.cy = f.cy
  JOIN devices d ON d.org_id = f.org_id AND d.id = f.device_id
 ORDER BY 1, 2, 3
ON CONFLICT (org_id, rep_id, day) DO UPDATE SET claimed_at = NULL, marked_at = now(), reason = EXCLUDED.reason
 WHERE rep_day_dirty.claimed_at IS NOT NULL
