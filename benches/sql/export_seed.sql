-- The data of `benches/export.rs`, in an empty migrated database: one org (UTC), a province with
-- 8 cities, 1,000 reps, 50,000 outlets and 5,000,000 visits over the 365 days ending yesterday
-- (about 14 a rep-day; 90% verified, 3% suspect), with their evidence figures. No pings, plans or
-- reviews: the benchmark measures the visit rows' path through the export. Deterministic.
INSERT INTO orgs (slug, name, timezone) VALUES ('bench-export', 'Bench export', 'UTC');

INSERT INTO tier_policies (org_id, tier, required_visits, cycle_days, min_dwell_s, default_radius_m)
SELECT o.id, 'A', 2, 28, 300, 60 FROM orgs o WHERE o.slug = 'bench-export';

INSERT INTO territories (org_id, code, name, level)
SELECT id, 'P', 'Province', 'province' FROM orgs WHERE slug = 'bench-export';
INSERT INTO territories (org_id, parent_id, code, name, level)
SELECT t.org_id, t.id, 'P-C' || c, 'City ' || c, 'city'
  FROM territories t JOIN orgs o ON o.id = t.org_id AND o.slug = 'bench-export', generate_series(1, 8) c
 WHERE t.code = 'P' ORDER BY c;

INSERT INTO users (org_id, login, name, role, territory_id)
SELECT o.id, 'rep' || r, 'Rep ' || r, 'rep',
       (SELECT t.id FROM territories t WHERE t.org_id = o.id AND t.code = 'P-C' || (1 + r % 8))
  FROM orgs o, generate_series(0, 999) r WHERE o.slug = 'bench-export';

INSERT INTO outlets (org_id, code, name, channel_type, tier, location, status, territory_id, created_at)
SELECT o.id, 'O' || lpad(i::text, 6, '0'), 'Outlet ' || i, 'agent_point', 'A',
       ST_SetSRID(ST_MakePoint(116 + (i % 250) * 0.004, 39 + (i / 250) * 0.004), 4326), 'active',
       (SELECT t.id FROM territories t WHERE t.org_id = o.id AND t.code = 'P-C' || (1 + i % 8)),
       now() - interval '800 days'
  FROM orgs o, generate_series(0, 49999) i WHERE o.slug = 'bench-export';

CREATE TEMP TABLE ids AS
SELECT (SELECT id FROM orgs WHERE slug = 'bench-export') AS org_id,
       (SELECT min(u.id) FROM users u JOIN orgs o ON o.id = u.org_id AND o.slug = 'bench-export') AS rep0,
       (SELECT min(x.id) FROM outlets x JOIN orgs o ON o.id = x.org_id AND o.slug = 'bench-export') AS outlet0;

INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, risk_score,
                    ping_count, min_distance_m, median_distance_m, median_accuracy_m, max_gap_s, location,
                    evidence, rule_version)
SELECT ids.org_id, ids.rep0 + i % 1000, ids.outlet0 + (i::bigint * 7919) % 50000, d.day,
       d.day + interval '8 hours' + (i / 1000 / 365 % 14) * interval '30 minutes',
       d.day + interval '8 hours' + (i / 1000 / 365 % 14) * interval '30 minutes' + (300 + i % 900) * interval '1 second',
       300 + i % 900,
       CASE WHEN i % 100 < 90 THEN 'verified' WHEN i % 100 < 97 THEN 'short' ELSE 'suspect' END,
       CASE WHEN i % 100 < 97 THEN 0 ELSE 0.6 END,
       10 + i % 30, 3 + i % 20, 8 + i % 25, 5 + i % 15, 30 + i % 60,
       ST_SetSRID(ST_MakePoint(116 + (i % 250) * 0.004, 39 + (i % 200) * 0.004), 4326),
       CASE WHEN i % 100 < 97 THEN '{"signals": {"mock_fixes": 0}}'::jsonb
            ELSE '{"signals": {"mock_fixes": 3, "teleport": true}}'::jsonb END,
       'visits-v3'
  FROM ids, generate_series(0, 4999999) i,
       LATERAL (SELECT (current_date - 1 - (i / 1000) % 365) AS day) d;
