-- The data of `benches/layers.rs`, in an empty migrated database: one org (Asia/Shanghai) with a
-- country, 16 city and 128 district territories, tiers A (4 per 28 days), B (2) and C (1), 2,000
-- reps, 1,000,000 outlets around 16 Chinese city centres like `benches/index.rs` (70% in a core,
-- 25% in its suburbs, 5% rural; 5% closed), registered 400 days ago, and 30 days of visits ending
-- today: each outlet visited at its tier's interval with probability 0.85, 90% verified.
-- Deterministic (setseed).
SELECT setseed(0.42);

INSERT INTO orgs (slug, name, timezone) VALUES ('bench-layers', 'Bench layers', 'Asia/Shanghai');

INSERT INTO tier_policies (org_id, tier, required_visits, cycle_days, min_dwell_s, default_radius_m)
SELECT o.id, t.tier, t.req, 28, t.dwell, 60 FROM orgs o,
       (VALUES ('A', 4, 600), ('B', 2, 300), ('C', 1, 300)) t(tier, req, dwell)
 WHERE o.slug = 'bench-layers';

CREATE TEMP TABLE city (n int, lat float8, lon float8, weight float8, spread_km float8, cum float8);
INSERT INTO city (n, lat, lon, weight, spread_km) VALUES
    (1, 39.904, 116.407, 14.0, 9.0), (2, 31.230, 121.473, 16.0, 10.0), (3, 23.129, 113.264, 12.0, 8.0),
    (4, 22.543, 114.058, 11.0, 7.0), (5, 30.657, 104.066, 9.0, 8.0), (6, 29.563, 106.551, 9.0, 9.0),
    (7, 30.593, 114.305, 7.0, 7.0), (8, 34.341, 108.940, 6.0, 6.0), (9, 30.274, 120.155, 6.0, 6.0),
    (10, 32.060, 118.797, 5.0, 6.0), (11, 39.134, 117.201, 6.0, 7.0), (12, 41.806, 123.432, 4.0, 6.0),
    (13, 45.803, 126.535, 3.0, 6.0), (14, 25.038, 102.718, 3.0, 5.0), (15, 34.747, 113.625, 5.0, 6.0),
    (16, 28.228, 112.939, 4.0, 5.0);
UPDATE city c SET cum = s.cum FROM (SELECT n, sum(weight) OVER (ORDER BY n) / sum(weight) OVER () AS cum FROM city) s
 WHERE s.n = c.n;

INSERT INTO territories (org_id, code, name, level)
SELECT id, 'CN', 'China', 'country' FROM orgs WHERE slug = 'bench-layers';
INSERT INTO territories (org_id, parent_id, code, name, level)
SELECT t.org_id, t.id, 'C' || c.n, 'City ' || c.n, 'city'
  FROM territories t JOIN orgs o ON o.id = t.org_id AND o.slug = 'bench-layers', city c
 WHERE t.code = 'CN' ORDER BY c.n;
INSERT INTO territories (org_id, parent_id, code, name, level)
SELECT t.org_id, t.id, t.code || '-D' || d, t.name || ' district ' || d, 'district'
  FROM territories t JOIN orgs o ON o.id = t.org_id AND o.slug = 'bench-layers', generate_series(1, 8) d
 WHERE t.level = 'city' ORDER BY t.id, d;

INSERT INTO users (org_id, login, name, role, territory_id)
SELECT o.id, 'rep' || r, 'Rep ' || r, 'rep',
       (SELECT t.id FROM territories t WHERE t.org_id = o.id AND t.code = 'C' || (1 + r % 16) || '-D' || (1 + (r / 16) % 8))
  FROM orgs o, generate_series(0, 1999) r WHERE o.slug = 'bench-layers';

-- Positions: u picks the kind and the city, (g1, g2) is a standard normal pair (Box-Muller).
CREATE TEMP TABLE draw AS
SELECT i, random() AS u, random() AS pick, sqrt(-2 * ln(1 - random())) AS r, 2 * pi() * random() AS a,
       random() AS x, random() AS y, random() AS s
  FROM generate_series(1, 1000000) i;

INSERT INTO outlets (org_id, code, name, channel_type, tier, location, status, territory_id, created_at)
SELECT o.id, 'O' || lpad(d.i::text, 7, '0'), 'Outlet ' || d.i,
       (ARRAY['business_hall', 'cooperative_hall', 'phone_mall', 'franchise_store', 'agent_point'])[1 + d.i % 5],
       CASE WHEN d.s < 0.1 THEN 'A' WHEN d.s < 0.4 THEN 'B' ELSE 'C' END,
       CASE WHEN d.u < 0.05 THEN ST_SetSRID(ST_MakePoint(100 + d.y * 25, 20 + d.x * 25), 4326)
            ELSE ST_SetSRID(ST_MakePoint(
                c.lon + d.r * sin(d.a) * c.spread_km * (CASE WHEN d.u < 0.75 THEN 1 ELSE 3 END)
                        / (111.195 * cos(radians(c.lat))),
                c.lat + d.r * cos(d.a) * c.spread_km * (CASE WHEN d.u < 0.75 THEN 1 ELSE 3 END) / 111.195), 4326)
       END,
       CASE WHEN d.i % 20 = 0 THEN 'closed' ELSE 'active' END,
       (SELECT t.id FROM territories t WHERE t.org_id = o.id AND t.code = 'C' || c.n || '-D' || (1 + d.i % 8)),
       now() - interval '400 days'
  FROM draw d
  JOIN orgs o ON o.slug = 'bench-layers'
  JOIN LATERAL (SELECT * FROM city WHERE cum >= d.pick ORDER BY n LIMIT 1) c ON true
 ORDER BY d.i;

UPDATE outlet_status_changes SET changed_at = now() - interval '400 days'
 WHERE org_id = (SELECT id FROM orgs WHERE slug = 'bench-layers');
UPDATE outlet_locations SET valid_from = now() - interval '400 days'
 WHERE org_id = (SELECT id FROM orgs WHERE slug = 'bench-layers');
DELETE FROM outlet_additions;

-- Visits: an outlet of interval k days (A 7, B 14, C 28) is due on the days with day % k = id % k.
INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count, location,
                    rule_version)
SELECT v.org_id, r.id, v.outlet_id, v.day, v.arrival, v.arrival + make_interval(secs => v.dwell_s), v.dwell_s,
       v.verdict, 20, v.location, 'bench'
  FROM (SELECT o.org_id, o.id AS outlet_id, o.location, o.territory_id, day::date AS day,
               (day::date + time '09:00' + make_interval(mins => (o.id % 480)::int)) AT TIME ZONE 'Asia/Shanghai' AS arrival,
               (300 + (o.id * 7919) % 1200)::int AS dwell_s,
               CASE WHEN random() < 0.9 THEN 'verified' WHEN random() < 0.5 THEN 'short' ELSE 'unverified' END AS verdict
          FROM outlets o
          JOIN orgs g ON g.id = o.org_id AND g.slug = 'bench-layers'
          CROSS JOIN LATERAL generate_series((now() AT TIME ZONE 'Asia/Shanghai')::date - 29,
                                             (now() AT TIME ZONE 'Asia/Shanghai')::date, interval '1 day') day
         WHERE o.status = 'active'
           AND (day::date - date '2000-01-03') % (CASE o.tier WHEN 'A' THEN 7 WHEN 'B' THEN 14 ELSE 28 END)
               = o.id % (CASE o.tier WHEN 'A' THEN 7 WHEN 'B' THEN 14 ELSE 28 END)
           AND random() < 0.85) v
  JOIN (SELECT org_id, territory_id, min(id) AS id FROM users WHERE role = 'rep' GROUP BY org_id, territory_id) r
    ON r.org_id = v.org_id AND r.territory_id = v.territory_id;
